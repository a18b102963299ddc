"""The fake tracker's command semantics, without storage nodes.

Devices are made "writeable" (and their hosts "reachable") by recording a monitor
observation (``FakeTracker.observe``), so the placement rules can be tested without HTTP.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django_mogilefs.testing.faketracker import FakeTracker, TrackerClient
from django_mogilefs.testing.faketracker.client import Reply, parse_reply
from django_mogilefs.testing.faketracker.files import parse_checksum
from django_mogilefs.testing.faketracker.policy import replicate_to
from django_mogilefs.testing.faketracker.workers import JobMaster, Reaper

pytestmark = pytest.mark.unit


class Fake:
    """A tracker that is never started: commands run through ``execute``."""

    def __init__(self) -> None:
        self.tracker = FakeTracker(reaper_delay=0)
        self.tracker.startup_self_test()
        self.store = self.tracker.store

    def __call__(self, line: str) -> Reply:
        return parse_reply(self.tracker.execute(line))

    def ok(self, line: str) -> dict[str, str]:
        reply = self(line)
        assert reply.ok, reply.raw
        return reply.args

    def writeable(self, *devids: int, mb_total: int = 1000, mb_used: int = 100) -> None:
        for devid in devids:
            self.tracker.observe(devid, "writeable", mb_total=mb_total, mb_used=mb_used)


@pytest.fixture
def fake() -> Fake:
    f = Fake()
    f.ok("create_domain domain=d")
    f.ok("create_class domain=d&class=thumb&mindevcount=1")
    return f


def add_hosts(fake: Fake, layout: dict[int, list[int]]) -> None:
    """``{hostid: [devids]}``, hosts alive on 127.0.0.<hostid>:7500, devices writeable."""
    for hostid, devids in layout.items():
        fake.ok(f"create_host host=h{hostid}&ip=127.0.0.{hostid}&port=7500&status=alive")
        for devid in devids:
            fake.ok(f"create_device hostid={hostid}&devid={devid}")
            fake.writeable(devid)


def test_hosts_are_created_down_and_ips_are_unique(fake: Fake) -> None:
    assert fake.ok("create_host host=a&ip=10.0.0.1&port=7500") == {"hostid": "1", "hostname": "a"}
    assert fake.ok("get_hosts")["host1_status"] == "down"
    assert fake("create_host host=b&ip=10.0.0.1&port=7501").code == "dup"
    assert fake("create_host host=b&ip=10.0.0.2&port=7500&status=weird").code == "unknown_state"
    assert fake("update_host host=nope&status=alive").code == "host_not_found"


def test_every_domain_has_an_implicit_default_class(fake: Fake) -> None:
    args = fake.ok("get_domains")
    classes = {args[f"domain1class{n}name"]: args[f"domain1class{n}mindevcount"] for n in (1, 2)}
    assert classes == {"default": "2", "thumb": "1"}
    assert fake("delete_class domain=d&class=default").code == "nodel_default_class"
    fake.ok("update_class domain=d&class=default&mindevcount=3")
    assert fake("delete_domain domain=d").code == "domain_has_classes"


def test_dead_devices_cannot_come_back_alive(fake: Fake) -> None:
    add_hosts(fake, {1: [1]})
    fake.ok("set_state host=h1&device=1&state=dead")
    assert fake("set_state host=h1&device=1&state=alive").code == "state_too_high"
    fake.ok("set_state host=h1&device=1&state=down")
    assert fake("set_state host=h2&device=1&state=down").code == "host_mismatch"
    assert fake("set_state host=h1&device=1&state=gone").code == "bad_params"


def test_no_devices_until_one_is_observed_writeable(fake: Fake) -> None:
    fake.ok("create_host host=h1&ip=127.0.0.1&port=7500&status=alive")
    fake.ok("create_device hostname=h1&devid=1")
    assert fake("create_open domain=d&key=k").code == "no_devices"
    fake.writeable(1)
    assert fake.ok("create_open domain=d&key=k")["devid"] == "1"


@pytest.mark.parametrize(
    "spoil", ["host down", "device readonly", "unreachable", "host unreachable", "full"]
)
def test_create_open_skips_unusable_devices(fake: Fake, spoil: str) -> None:
    add_hosts(fake, {1: [1], 2: [2]})
    if spoil == "host down":
        fake.ok("update_host host=h1&status=down")
    elif spoil == "device readonly":
        fake.ok("set_state host=h1&device=1&state=readonly")
    elif spoil == "unreachable":
        fake.tracker.observe(1, "unreachable")
    elif spoil == "host unreachable":  # the monitor timed out on the host ("gone")
        fake.tracker.observations.set_host(1, "unreachable")
        devices = fake.ok("get_devices devid=1")
        assert devices["dev1_observed_state"] == "writeable", "the device row is untouched"
    else:
        fake.writeable(1, mb_total=1000, mb_used=950)  # below min_free_space (100 MB)
    devids = {fake.ok("create_open domain=d&key=k")["devid"] for _ in range(20)}
    assert devids == {"2"}


def test_multi_dest_gives_one_device_per_host(fake: Fake) -> None:
    add_hosts(fake, {1: [1, 4], 2: [2, 5], 3: [3]})
    for _ in range(20):
        args = fake.ok("create_open domain=d&key=k&multi_dest=1")
        assert args["dev_count"] == "3"
        hosts = {fake.store.device(int(args[f"devid_{n}"])).hostid for n in (1, 2, 3)}
        assert hosts == {1, 2, 3}
        for n in (1, 2, 3):
            devid = args[f"devid_{n}"]
            assert args[f"path_{n}"].endswith(
                f"/dev{devid}/" + "0/000/000/" + f"{int(args['fid']):010d}.fid"
            )


def test_fids_start_at_2_and_follow_explicit_ones(fake: Fake) -> None:
    add_hosts(fake, {1: [1]})
    assert fake.ok("create_open domain=d&key=a")["fid"] == "2"
    assert fake("create_open domain=d&key=b&fid=1").code == "fid_in_use"  # start-up self-test
    assert fake.ok("create_open domain=d&key=b&fid=5000")["path"] == (
        "http://127.0.0.1:7500/dev1/0/000/005/0000005000.fid"
    )
    assert fake("create_open domain=d&key=c&fid=5000").code == "fid_in_use"
    assert fake.ok("create_open domain=d&key=c")["fid"] == "5001"


def test_create_open_rejects_unknown_and_explicit_default_class(fake: Fake) -> None:
    add_hosts(fake, {1: [1]})
    assert fake("create_open domain=d&key=k&class=nope").code == "unreg_class"
    assert fake("create_open domain=d&key=k&class=default").code == "unreg_class"
    assert fake("create_open domain=zz&key=k").code == "unreg_domain"


def opened(fake: Fake) -> tuple[dict[str, str], str]:
    """Key ``k`` opened on the one device of a one-host cluster: the create_open answer,
    and the create_close that ends it without naming the key."""
    add_hosts(fake, {1: [1]})
    args = fake.ok("create_open domain=d&key=k")
    return args, f"create_close domain=d&fid={args['fid']}&devid=1&path={args['path']}"


def test_close_without_key_discards_the_upload(fake: Fake) -> None:
    args, close = opened(fake)
    assert fake(close).ok
    assert fake(close).code == "no_temp_file"
    fid = int(args["fid"])
    assert fake.store.queue_row("file_to_delete2", fid) is not None
    assert fake.store.devids(fid) == [1], "the node's copy is left for the delete job"
    assert fake(close + "x").code == "bogus_args"


def add_file(
    fake: Fake, key: str, fid: int, devids: tuple[int, ...] = (1,), classid: int = 1
) -> None:
    db = fake.store.db
    db.execute(
        "INSERT INTO file (fid, dmid, dkey, length, classid, devcount) VALUES (?, 1, ?, 3, ?, ?)",
        (fid, db.key_param(key), classid, len(devids)),
    )
    for devid in devids:
        db.execute("INSERT INTO file_on (fid, devid) VALUES (?, ?)", (fid, devid))


def test_list_keys_sorts_pages_and_errors(fake: Fake) -> None:
    for fid, key in enumerate(["b/2", "a/1", "b/1", "c"], 10):
        add_file(fake, key, fid)
    assert fake.ok("list_keys domain=d&prefix=b/") == {
        "key_count": "2",
        "key_1": "b/1",
        "key_2": "b/2",
        "next_after": "b/2",
    }
    assert fake.ok("list_keys domain=d&after=b/1&limit=1") == {
        "key_count": "1",
        "key_1": "b/2",
        "next_after": "b/2",
    }
    assert fake("list_keys domain=d&prefix=z").code == "none_match"
    assert fake("list_keys domain=d&prefix=b/&after=a").code == "after_mismatch"


def test_rename_and_updateclass_errors(fake: Fake) -> None:
    add_file(fake, "x", 10)
    add_file(fake, "y", 11)
    assert fake("rename domain=d&from_key=x&to_key=y").code == "key_exists"
    fake.ok("rename domain=d&from_key=x&to_key=z")
    assert fake("rename domain=d&from_key=x&to_key=q").code == "unknown_key"
    assert fake("updateclass domain=d&key=nope&class=thumb").code == "invalid_key"
    assert fake("updateclass domain=d&key=z&class=nope").code == "class_not_found"


def test_file_debug_of_an_unknown_fid_is_ok(fake: Fake) -> None:
    assert fake("file_debug fid=999999").raw == "OK checksum=NONE"
    assert fake("file_debug domain=d&key=nope").code == "unknown_key"


def test_checksum_formats(fake: Fake) -> None:
    args, close = opened(fake)
    close += "&key=k"
    for bad in (
        "MD5:xyz",
        "MD5:" + "0" * 30,
        "MD5:" + "0" * 33,  # 17 bytes once packed
        "SHA-256:" + "0" * 64,
        "MD5:" + "0" * 40,
        "md5:" + "0" * 32,  # hash names are case-sensitive
    ):
        assert fake(f"{close}&checksum={bad}").code == "invalid_checksum_format"
    # The format error comes before the temp file is consumed: the upload can still close.
    assert fake.ok(f"file_debug fid={args['fid']}")["tempfile_fid"] == args["fid"]


def test_an_odd_digit_count_is_padded_like_perls_pack() -> None:
    assert parse_checksum(7, "SHA-1:" + "a" * 39).digest == bytes.fromhex("a" * 39 + "0")


@pytest.mark.parametrize(
    ("policy", "mindevcount", "on", "expected"),
    [
        ("MultipleHosts()", 3, [1], "other host"),
        ("MultipleHosts()", 2, [1, 2], "happy"),
        ("MultipleHosts()", 1, [1], "happy"),
        ("MultipleHosts(2)", 3, [1, 2], "happy"),  # explicit count wins over mindevcount
        ("MultipleDevices()", 2, [1], "any"),
    ],
)
def test_replication_policy(
    fake: Fake, policy: str, mindevcount: int, on: list[int], expected: str
) -> None:
    add_hosts(fake, {1: [1, 4], 2: [2], 3: [3]})
    devices = fake.tracker.view().devices
    on_devs = [devices[d] for d in on]
    for _ in range(10):
        request = replicate_to(policy, mindevcount, on_devs, devices, set(), random.Random())
        if expected == "happy":
            assert request.happy and not request.too_happy
            continue
        dest = (request.ideal or request.desperate)[0]
        if expected == "other host":
            assert dest.hostid != 1
        else:
            assert dest.devid not in on


def test_a_file_with_more_copies_than_its_class_is_too_happy(fake: Fake) -> None:
    add_hosts(fake, {1: [1], 2: [2], 3: [3]})
    devices = fake.tracker.view().devices
    request = replicate_to(
        "MultipleHosts()", 2, list(devices.values()), devices, set(), random.Random()
    )
    assert request.too_happy


def test_replication_has_no_suggestion_when_no_other_host_is_writeable(fake: Fake) -> None:
    add_hosts(fake, {1: [1], 2: [2], 3: [3]})
    fake.tracker.observe(3, "unreachable")
    devices = fake.tracker.view().devices
    request = replicate_to(
        "MultipleHosts()", 3, [devices[1], devices[2]], devices, set(), random.Random()
    )
    assert request.no_answer


# ---------------------------------------------------------------------------- over TCP


@pytest.fixture
def served() -> Iterator[FakeTracker]:
    tracker = FakeTracker().start(workers=False)
    yield tracker
    tracker.shutdown()


def test_pipelined_requests_are_answered_in_order(served: FakeTracker) -> None:
    with TrackerClient(served.hostport) as client:
        client.send(b"noop\r\nget_paths domain=nosuchdom&key=x\r\nnoop callid=7\n")
        lines = [client.read_raw_line() for _ in range(3)]
    assert b"".join(lines) == (
        b"OK \r\nERR unreg_domain Domain+name+invalid/not+found\r\nOK callid=7\r\n"
    )


def test_an_empty_line_gets_no_answer(served: FakeTracker) -> None:
    with TrackerClient(served.hostport, timeout=0.3) as client:
        client.send(b"\r\n\n")
        with pytest.raises(socket.timeout):
            client.read_raw_line()
    with TrackerClient(served.hostport) as client:
        client.send(b"\r\n\nnoop\r\n")
        assert client.read_raw_line() == b"OK \r\n"


def test_admin_commands_end_with_a_dot(served: FakeTracker) -> None:
    with TrackerClient(served.hostport) as client:
        assert client.admin("version") == ["2.73"]
        stats = client.admin("stats")
        assert [line.split()[0] for line in stats][:4] == [
            "uptime",
            "pending_queries",
            "processing_queries",
            "bored_queryworkers",
        ]
        assert any(line.startswith("Mogile Admin Help") for line in client.admin("help"))
        assert client.request("noop") == "OK "  # still in sync afterwards


def test_unknown_command_echoes_callid(served: FakeTracker) -> None:
    with TrackerClient(served.hostport) as client:
        assert client.request("bogus x=1&callid=9") == (
            "ERR unknown_command Unknown+server+command 9"
        )


def test_shutdown_closes_open_connections() -> None:
    tracker = FakeTracker().start(workers=False)
    client = TrackerClient(tracker.hostport, timeout=5)
    assert client.request("noop") == "OK "
    tracker.shutdown()
    with pytest.raises((ConnectionError, OSError)):
        client.request("noop")
    client.close()


def test_file_debug_shows_tempfile_rows(fake: Fake) -> None:
    args = fake.ok("file_debug fid=1")  # the MySQL store's start-up self-test row
    assert (args["tempfile_dkey"], args["tempfile_dmid"], args["checksum"]) == (
        "_server_startup_test",
        "99",
        "NONE",
    )


def test_reaper_forgets_copies_on_dead_devices(fake: Fake) -> None:
    add_hosts(fake, {1: [1], 2: [2]})
    add_file(fake, "k", 10, devids=(1, 2))
    fake.ok("set_state host=h2&device=2&state=dead")
    Reaper(fake.tracker).run_once()
    info = fake.ok("file_info domain=d&key=k&devices=1")
    assert info["devids"] == "1"
    assert info["devcount"] == "2", "as the real reaper, it leaves devcount to the replicator"
    assert fake.store.queue_row("file_to_replicate", 10) is not None


def test_job_master_hands_out_a_backlog_in_one_run(fake: Fake) -> None:
    """A backlog bigger than a batch goes out as the workers get through it, not one
    batch per poll: a bulk load's replication checks keep up with the load."""
    backlog = 3 * JobMaster.BATCH
    for fid in range(10, 10 + backlog):
        fake.store.enqueue_replication(fid)
    work, taken = fake.tracker.replicate_work, []

    def worker() -> None:  # slower than a grab, so the queue is full after each one
        while len(taken) < backlog:
            taken.append(work.get(timeout=10))
            time.sleep(0.001)

    thread = threading.Thread(target=worker)
    thread.start()
    JobMaster(fake.tracker).run_once()
    assert fake.tracker.stats["work_sent_to_replicate"] == backlog
    thread.join()
    assert sorted(t.row.fid for t in taken) == list(range(10, 10 + backlog))
