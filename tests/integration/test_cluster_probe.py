"""write_destinations and the node probe against a tracker: no temp file is left, and a
node that stops answering (not refusing) is skipped by the tracker and found by the probe."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.probe import Verdict, probe_all
from django_mogilefs.testing.cluster import MogileCluster

from integration.nodecontrol import frozen

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
    writeable = {int(d["devid"]) for d in mogile_cluster.devices()}
    assert 1 <= len(offered) <= 3 and len(set(offered)) == len(offered)
    assert set(offered) <= writeable
    assert [command for command, _ in answers] == ["create_open", "create_close"]
    fid = answers[0][1]["fid"]
    debug = mogile_cluster.call("file_debug", fid=fid)
    assert debug.ok, debug.raw
    assert not [key for key in debug.args if key.startswith("tempfile_")], debug.args
    assert "fid_dkey" not in debug.args  # and no file was made of it


def test_a_frozen_node_is_skipped_by_the_tracker_and_found_by_the_probe(mogile_cluster, admin):
    if not mogile_cluster.fake:
        pytest.skip("freezing a node needs the test's own storage nodes")
    node = mogile_cluster.nodes[-1]
    frozen_devids = set(node.devids)
    with frozen(mogile_cluster, node.name):
        deadline = time.monotonic() + 20
        clean_rounds = 0
        while clean_rounds < 5:  # create_open's choice is random: ask several times
            assert time.monotonic() < deadline, "the tracker kept offering the frozen node"
            offered = set(admin.write_destinations(mogile_cluster.domain, "avatar"))
            clean_rounds = clean_rounds + 1 if offered and not offered & frozen_devids else 0
            time.sleep(0.1)
        hosts = {h.name: h for h in admin.get_hosts()}
        urls = [hosts[node.name].usage_url(devid) for devid in sorted(frozen_devids)]
        healthy = mogile_cluster.nodes[0]
        urls.append(hosts[healthy.name].usage_url(healthy.devids[0]))
        started = time.monotonic()
        probes = probe_all(urls, timeout=1.0)
        assert time.monotonic() - started < 1.5
        assert [probes[u].verdict for u in urls] == [Verdict.NO_ANSWER] * len(frozen_devids) + [
            Verdict.ANSWERS
        ]
    mogile_cluster.wait_devices(
        lambda d: d["observed_state"] == "writeable" and d["mb_total"] != ""
    )
