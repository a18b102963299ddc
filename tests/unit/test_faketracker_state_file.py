"""The file-backed fake tracker state: what one State writes, another one reads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django_mogilefs.testing.faketracker import FakeTracker
from django_mogilefs.testing.faketracker.protocol import parse_reply
from django_mogilefs.testing.faketracker.statefile import StateFileError, file_state
from django_mogilefs.testing.faketracker.workers import JobMaster

pytestmark = pytest.mark.unit


def ok(tracker: FakeTracker, line: str) -> dict[str, str]:
    reply = parse_reply(tracker.execute(line))
    assert reply.ok, reply.raw
    return reply.args


def test_a_change_through_one_tracker_is_seen_through_the_other(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    one, two = FakeTracker(state=file_state(path)), FakeTracker(state=file_state(path))
    ok(one, "create_domain domain=shared")
    ok(two, "create_class domain=shared&class=c&mindevcount=2")
    domains = ok(one, "get_domains")
    assert domains["domain1"] == "shared"
    assert {domains["domain1class1name"], domains["domain1class2name"]} == {"default", "c"}
    reopened = FakeTracker(state=file_state(path))  # as after a restart
    assert reopened.state.domain_by_name("shared") is not None


def test_concurrent_changes_from_two_states_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    states = [file_state(path), file_state(path)]

    def bump(state) -> None:  # type: ignore[no-untyped-def]
        for _ in range(200):
            with state.lock:
                state.settings["counter"] = str(int(state.settings.get("counter", "0")) + 1)

    threads = [threading.Thread(target=bump, args=(s,)) for s in states * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with states[0].lock:
        assert states[0].settings["counter"] == "800"


def test_fids_are_not_handed_out_twice(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    states = [file_state(path), file_state(path)]
    fids: list[int | None] = []

    def alloc(state) -> None:  # type: ignore[no-untyped-def]
        for _ in range(100):
            with state.lock:
                fids.append(state.alloc_fid(None))
                state.tempfiles[fids[-1]] = None

    threads = [threading.Thread(target=alloc, args=(s,)) for s in states]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(fids)) == 200


def test_a_file_that_is_not_a_state_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"not a pickle")
    with pytest.raises(StateFileError, match="not a fake tracker state file"):
        file_state(path)
    assert path.read_bytes() == b"not a pickle"
    with pytest.raises(StateFileError, match="not a directory"):
        file_state(tmp_path / "missing" / "state.db")


def test_two_trackers_job_masters_hand_out_each_fid_once(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    one, two = FakeTracker(state=file_state(path)), FakeTracker(state=file_state(path))
    with one.state.lock:
        for fid in (5, 6):
            one.state.enqueue_replication(fid)
    JobMaster(one).run_once()
    JobMaster(two).run_once()
    assert one.replicate_work.qsize() == 2, "the first job master took both"
    assert two.replicate_work.qsize() == 0, "the second sees the first one's leases"
    one.shutdown()  # never started: only releases its leases
    JobMaster(two).run_once()
    assert two.replicate_work.qsize() == 2, "a stopped tracker's work is taken over"
