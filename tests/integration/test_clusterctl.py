"""scripts/clusterctl.py on a fake cluster: a dead disk, a new machine, a retired one.

Each test starts its own cluster (three Perlbal nodes with two devices each, two fake
trackers on one database) and changes it for good, as these operations do. The
trackers reap a dead device after 1 s instead of 16 s, so the tests are quick; every
other timing is the real tracker's.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import clusterctl
import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.testing.cluster import MogileCluster, start_fake_cluster

pytestmark = pytest.mark.integration

FILES = 12


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[MogileCluster]:
    with start_fake_cluster(
        tmp_path / "cluster",
        nodes="perlbal",
        trackers=2,
        monitor_interval=0.3,
        test_write_interval=0.5,
        replicate_poll=0.3,
        reaper_delay=1.0,
    ) as cluster:
        yield cluster


@pytest.fixture
def stored(cluster: MogileCluster) -> dict[str, bytes]:
    """FILES originals (class avatar, 3 copies) and FILES thumbnails, all replicated."""
    client = MogileFSClient(cluster.trackers, cluster.domain)
    files = {}
    try:
        for n in range(FILES):
            for cls in ("avatar", "thumb"):
                key, body = f"{cls}/{n}", os.urandom(2000 + n)
                client.store(key, body, cls=cls)
                files[key] = body
        admin = ClusterAdmin(cluster.trackers)
        try:
            assert wait_copies(admin, cluster)
        finally:
            admin.close()
    finally:
        client.close()
    return files


def run(cluster: MogileCluster, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    environ = {"MOGILEFS_TRACKERS": ",".join(cluster.trackers)}
    code = clusterctl.main(list(args), environ, out, err)
    return code, out.getvalue(), err.getvalue()


def wait_copies(
    admin: ClusterAdmin, cluster: MogileCluster, exclude: frozenset[int] = frozenset()
) -> bool:
    """Until every file has its class's copies, none on ``exclude`` (False after 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        classes = {(cluster.domain, "avatar"): 3, (cluster.domain, "thumb"): 1}
        result = clusterctl.check_copies(admin, classes, set(exclude))
        if not result.bad and not result.on_excluded:
            return True
        time.sleep(0.3)
    return False


def copies_by_key(cluster: MogileCluster) -> dict[str, set[int]]:
    admin = ClusterAdmin(cluster.trackers)
    try:
        return {f.key: set(admin.devids_of(f.fid)) for f in admin.iter_fids()}
    finally:
        admin.close()


def read_all(cluster: MogileCluster, files: dict[str, bytes]) -> dict[str, bytes]:
    client = MogileFSClient(cluster.trackers, cluster.domain)
    try:
        out = {}
        for key in files:
            with client.open(key) as stream:
                out[key] = stream.read()
        return out
    finally:
        client.close()


def test_a_dead_disk_is_copied_again_and_stays_dead(
    cluster: MogileCluster, stored: dict[str, bytes]
) -> None:
    before = copies_by_key(cluster)
    victim = 4  # mog1's second device
    on_victim = {k for k, devids in before.items() if victim in devids}
    assert on_victim, "the test needs files on the device"
    node = cluster.node("mog1")
    for path in (node.docroot / f"dev{victim}").iterdir():  # the disk is gone
        if path.is_dir():
            shutil.rmtree(path)
    code, out, err = run(cluster, "mark-dead", "mog1", str(victim), "--wait", "60")
    assert code == 0, err
    assert "done after" in out
    after = copies_by_key(cluster)
    hosts = {d.devid: d.hostid for d in ClusterAdmin(cluster.trackers).get_devices()}
    for key, devids in after.items():
        assert victim not in devids, key
        if key.startswith("avatar/"):
            assert len(devids) == 3 and len({hosts[d] for d in devids}) == 3, (key, devids)
    originals = {k: v for k, v in stored.items() if k.startswith("avatar/")}
    assert read_all(cluster, originals) == originals
    # The only copy of a thumbnail on the dead disk is gone; the others are read back.
    kept = {k: v for k, v in stored.items() if k.startswith("thumb/") and k not in on_victim}
    assert read_all(cluster, kept) == kept
    assert run(cluster, "mark-dead", "mog1", str(victim))[1].startswith(
        "device 4 on mog1 is dead already"
    )


def test_marking_dead_refuses_to_leave_fewer_devices_than_copies(
    cluster: MogileCluster, stored: dict[str, bytes]
) -> None:
    for host, devid in (("mog1", 1), ("mog1", 4), ("mog2", 2)):
        assert run(cluster, "mark-dead", host, str(devid))[0] == 0
    code, _, err = run(cluster, "mark-dead", "mog2", "5")
    assert code == 1
    assert "would leave 2 alive device(s), and class testdom/avatar keeps 3 copies" in err
    states = {d.devid: d.status for d in ClusterAdmin(cluster.trackers).get_devices()}
    assert states[5] == "alive", "a refused command changes nothing"
    assert run(cluster, "mark-dead", "mog9", "1")[2].startswith(
        "clusterctl: refused: no host 'mog9'"
    )
    assert "has no device 2" in run(cluster, "mark-dead", "mog1", "2")[2]


def test_a_new_machine_gets_a_share_and_a_retired_one_takes_no_copy(
    cluster: MogileCluster, stored: dict[str, bytes]
) -> None:
    node = cluster.add_node()
    new = set(node.devids)
    code, out, err = run(cluster, "spread", node.name, "--wait", "120")
    assert code == 0, err
    assert "rebalance policy: from_devices=1,2,3 limit_type=device limit_by=size" in out
    admin = ClusterAdmin(cluster.trackers)
    assert wait_copies(admin, cluster)
    assert any(devids & new for devids in copies_by_key(cluster).values()), "nothing moved onto it"

    code, out, err = run(cluster, "retire", node.name, "--wait", "120")
    assert code == 0, out + err
    assert f"{node.name} is retired: {2 * FILES} file(s) checked" in out
    # Every file has its copies elsewhere before the machine is stopped.
    assert wait_copies(admin, cluster, frozenset(new))
    states = {d.devid: d.status for d in admin.get_devices() if d.devid in new}
    assert set(states.values()) == {"dead"}
    node.stop()
    assert read_all(cluster, stored) == stored
    admin.close()


def test_a_spread_onto_one_host_only_is_refused(cluster: MogileCluster) -> None:
    """With three one-device hosts left, the destinations besides the sources would be
    only the new host's devices: the case where 2.73's rebalance deletes copies."""
    for host, devid in (("mog1", 4), ("mog2", 5), ("mog3", 6)):
        assert run(cluster, "mark-dead", host, str(devid), "--force")[0] == 0
    node = cluster.add_node()
    code, _, err = run(cluster, "spread", node.name)
    assert code == 1
    assert "spreading needs at least 3 destination devices besides the sources" in err
