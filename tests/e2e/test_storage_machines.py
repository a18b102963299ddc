"""A storage machine comes, takes files, and goes again, and no file loses a copy.

E2E_NEW_NODE_START brings up a machine the cluster does not have yet and registers it
(compose: the `storage4` profile's mogstored4 and bootstrap). New uploads use it;
``clusterctl spread`` moves a share of the existing files onto it (a rebalance);
``clusterctl retire`` moves every file off it again (a rebalance from its devices,
left in drain), checks every file's copies and marks it dead. Only then is it switched
off (E2E_NEW_NODE_STOP), and every original is still served with the same bytes.

This changes the cluster for good (the retired host and its device ids stay dead):
run it on a cluster made for testing.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import clusterctl
import pytest
from django_mogilefs.cluster import ClusterAdmin
from waiting import wait_until

from e2e.conftest import MONITOR_DEADLINE, REPLICATION_DEADLINE, Target
from e2e.flows import Stored, devices_of, served, store_avatars

pytestmark = pytest.mark.e2e

BEFORE = 12  # avatars stored before the machine comes
AFTER = 10  # uploads after it came: with 4 hosts, a file skips the new one 1 time in 4


@dataclass
class Machine:
    name: str
    hostid: int
    devids: set[int]
    stored: list[Stored]  # the avatars stored before it came
    short_before: set[str]  # files without their copies already (a dead disk's thumbnails)
    last_fid_before: int = 0  # every file older than the machine has a fid up to this


def files_without_copies(target: Target, exclude: Collection[int] = ()) -> set[str]:
    """Every file whose copies (not counting ``exclude``) are fewer than its class's."""
    classes = {
        (domain, name): info.mindevcount
        for domain, cls in target.admin.get_domains().items()
        for name, info in cls.items()
    }
    return clusterctl.check_copies(target.admin, classes, set(exclude)).bad


def machine_ready(target: Target, known: set[str]) -> Machine | None:
    """The host that appeared, once every tracker sees all its devices writeable."""
    new = [h for h in target.admin.get_hosts() if h.name not in known]
    if not new:
        return None
    host = new[0]
    devids = {d.devid for d in target.admin.get_devices() if d.hostid == host.hostid}
    for tracker in target.trackers:  # each has its own monitor
        admin = ClusterAdmin([tracker])
        try:
            ready = {d.devid for d in admin.get_devices() if d.devid in devids and d.ready}
        finally:
            admin.close()
        if not devids or ready != devids:
            return None
    return Machine(host.name, host.hostid, devids, [], set())


@pytest.fixture(scope="module")
def machine(target: Target, mogile) -> Iterator[Machine]:
    if target.new_node_hooks is None:
        pytest.skip(
            "set E2E_NEW_NODE_START and E2E_NEW_NODE_STOP to commands that bring up (and "
            "register) a new storage machine, and switch it off"
        )
    known = {h.name for h in target.admin.get_hosts()}
    stored = store_avatars(target, mogile, BEFORE, seed=800)
    short_before = files_without_copies(target)
    last_fid = max((f.fid for f in target.admin.iter_fids()), default=0)
    target.start_new_node()
    found = wait_until(
        "the new machine is registered and writeable",
        lambda: machine_ready(target, known),
        MONITOR_DEADLINE + 60,
    )
    assert isinstance(found, Machine)
    found.stored, found.short_before, found.last_fid_before = stored, short_before, last_fid
    yield found


def test_a_new_machine_gets_new_uploads_and_a_share_of_the_old_files(
    target: Target, mogile, machine: Machine
) -> None:
    later = store_avatars(target, mogile, AFTER, seed=900)
    placed = [devices_of(target, mogile, target.key(s.links.image_url)) for s in later]
    assert any(copies & machine.devids for copies in placed), "no new upload reached it"

    started = time.monotonic()
    spread = target.clusterctl("spread", machine.name, "--wait", str(REPLICATION_DEADLINE * 5))
    assert spread.returncode == 0, spread.stderr

    def moved() -> int:
        """How many files older than the machine have a copy on it now."""
        old = (f for f in target.admin.iter_fids() if f.fid <= machine.last_fid_before)
        return sum(bool(set(target.admin.devids_of(f.fid)) & machine.devids) for f in old)

    count = wait_until("old files have copies on the new machine", moved, REPLICATION_DEADLINE)
    print(
        f"\nspread onto {machine.name}: {count} old file(s) in {time.monotonic() - started:.1f} s"
    )
    assert files_without_copies(target) <= machine.short_before, "a file lost a copy"


def test_a_retired_machine_takes_no_copy_with_it(target: Target, mogile, machine: Machine) -> None:
    started = time.monotonic()
    retired = target.clusterctl("retire", machine.name, "--wait", str(REPLICATION_DEADLINE * 5))
    assert retired.returncode == 0, retired.stdout + retired.stderr
    print(f"\nretired {machine.name}: {time.monotonic() - started:.1f} s")
    # Checked before the machine is switched off: every copy is elsewhere already.
    assert files_without_copies(target, machine.devids) <= machine.short_before
    excluded = ",".join(map(str, sorted(machine.devids)))
    copies = target.clusterctl("copies", "--exclude", excluded)
    assert f" 0 on device(s) {excluded.replace(',', ', ')}" in copies.stdout, copies.stdout
    states = {d.devid: d.status for d in target.admin.get_devices() if d.devid in machine.devids}
    assert set(states.values()) == {"dead"}
    assert {h.name: h.status for h in target.admin.get_hosts()}[machine.name] == "dead"

    target.stop_new_node()
    for item in machine.stored:
        response = target.client().get(item.links.image_url)
        assert response.status_code == 200 and response.content == item.data
    assert (
        served(target.client(), machine.stored[0].links.image_url).content == machine.stored[0].data
    )
