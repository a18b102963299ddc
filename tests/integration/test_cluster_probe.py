"""write_destinations and the node probe against a tracker: no temp file is left, and a
node that stops answering (not refusing) is skipped by the tracker and found by the probe."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.probe import Verdict, probe_all
from django_mogilefs.testing.cluster import MogileCluster

from integration.nodecontrol import NodeControl, NodeControlUnavailable

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(mogile_cluster: MogileCluster) -> Iterator[ClusterAdmin]:
    admin = ClusterAdmin(mogile_cluster.trackers)
    yield admin
    admin.close()


def test_write_destinations_leaves_no_temp_file(mogile_cluster, admin, monkeypatch):
    answers: list[tuple[str, dict[str, str]]] = []
    request = admin.pool.request

    def spy(command, args=None):
        answer = request(command, args)
        answers.append((command, answer))
        return answer

    monkeypatch.setattr(admin.pool, "request", spy)
    offered = admin.write_destinations(mogile_cluster.domain, "avatar")
    writeable = {d.devid for d in mogile_cluster.devices()}
    assert 1 <= len(offered) <= 3 and len(set(offered)) == len(offered)
    assert set(offered) <= writeable
    assert [command for command, _ in answers] == ["create_open", "create_close"]
    fid = answers[0][1]["fid"]
    debug = mogile_cluster.call("file_debug", fid=fid)
    assert debug.ok, debug.raw
    assert not [key for key in debug.args if key.startswith("tempfile_")], debug.args
    assert "fid_dkey" not in debug.args  # and no file was made of it


@pytest.fixture
def frozen_devids(mogile_cluster: MogileCluster) -> Iterator[set[int]]:
    """The devices of a node that stopped answering (not refusing), until the test ends."""
    try:
        control = NodeControl.for_cluster(mogile_cluster)
        control.check_freezing()
    except NodeControlUnavailable as exc:
        pytest.skip(str(exc))
    with control.frozen_node() as devids:
        yield devids


def test_a_frozen_node_is_skipped_by_the_tracker_and_found_by_the_probe(
    mogile_cluster, admin, frozen_devids
):
    # create_open's choice is random: ask several times.
    for _ in range(5):
        offered = set(admin.write_destinations(mogile_cluster.domain, "avatar"))
        assert offered and not offered & frozen_devids
    hosts = {h.hostid: h for h in admin.get_hosts()}
    devices = {d.devid: d for d in admin.get_devices()}
    healthy = next(d for d in devices.values() if d.devid not in frozen_devids)
    urls = [hosts[devices[n].hostid].usage_url(n) for n in sorted(frozen_devids)]
    urls.append(hosts[healthy.hostid].usage_url(healthy.devid))
    started = time.monotonic()
    probes = probe_all(urls, timeout=1.0)
    assert time.monotonic() - started < 1.5
    verdicts = [probes[u].verdict for u in urls]
    assert verdicts == [Verdict.NO_ANSWER] * len(frozen_devids) + [Verdict.ANSWERS]
