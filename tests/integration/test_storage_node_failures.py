"""The fake tracker's two storage-node failure modes, as MogileFS 2.73's monitor has them.

* Refused (the usage GET fails in < 0.5 s: a stopped process on a live address): the
  device's ``observed_state`` becomes ``unreachable``.
* Gone (the GET fails after >= 0.5 s: the address swallows packets): the *host* is marked
  unreachable inside the tracker; ``get_devices`` still says ``writeable`` and
  ``get_hosts`` has no observed state at all, yet ``create_open`` stops offering the
  device and ``get_paths`` avoids it. A node frozen with SIGSTOP stands in for a gone
  node: connections complete in the kernel, and no answer ever comes.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable

import pytest
from django_mogilefs.cluster import DeviceInfo
from django_mogilefs.testing.cluster import MogileCluster
from django_mogilefs.testing.faketracker.client import TrackerClient
from waiting import wait_until

from integration.nodecontrol import frozen

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(make_fake_cluster: Callable[..., MogileCluster]) -> MogileCluster:
    """A cluster of the module's own: its tests stop and freeze its nodes."""
    return make_fake_cluster(http_timeout=1.0)


def offered(client: TrackerClient, domain: str) -> set[str]:
    args = client.call("create_open", domain=domain, key=f"probe/{uuid.uuid4().hex}", multi_dest=1)
    assert args.ok, args.raw
    return {args.args[f"devid_{n}"] for n in range(1, int(args.args["dev_count"]) + 1)}


def store_everywhere(cluster: MogileCluster, client: TrackerClient) -> str:
    """A key with a copy on each of the three nodes."""
    key = f"failures/{uuid.uuid4().hex}"
    opened = client.call("create_open", domain=cluster.domain, key=key, **{"class": "avatar"})
    put = urllib.request.Request(opened.args["path"], data=b"three copies", method="PUT")
    urllib.request.urlopen(put, timeout=10).close()
    closed = client.call(
        "create_close",
        domain=cluster.domain,
        key=key,
        size=12,
        **{k: opened.args[k] for k in ("fid", "devid", "path")},
    )
    assert closed.ok, closed.raw
    deadline = time.monotonic() + 20
    while client.call("file_info", domain=cluster.domain, key=key).args["devcount"] != "3":
        assert time.monotonic() < deadline, "not replicated to 3 devices"
        time.sleep(0.1)
    return key


def device(cluster: MogileCluster, devid: int) -> DeviceInfo:
    return next(d for d in cluster.devices() if d.devid == devid)


def test_a_refused_node_is_unreachable_in_get_devices(cluster: MogileCluster) -> None:
    with cluster.client() as client:
        cluster.stop_node("mog3", wait=False)
        try:
            started = time.monotonic()
            wait_until(
                "mog3 unreachable",
                lambda: device(cluster, 3).observed_state == "unreachable",
                5,
                interval=0.1,
            )
            assert time.monotonic() - started < 5
            assert all("3" not in offered(client, cluster.domain) for _ in range(4))
            assert device(cluster, 6).observed_state == "unreachable", "mog3's other device"
        finally:
            cluster.start_node("mog3")


def test_a_gone_node_stays_writeable_in_get_devices_but_is_avoided(
    cluster: MogileCluster,
) -> None:
    with cluster.client() as client:
        key = store_everywhere(cluster, client)
        mog2 = {str(d) for d in cluster.node("mog2").devids}  # devices 2 and 5
        with frozen(cluster, "mog2"):
            wait_until("mog2 avoided", lambda: not offered(client, cluster.domain) & mog2, 10, 0.1)
            for _ in range(4):
                dests = offered(client, cluster.domain)
                assert len(dests) == 2 and not dests & mog2, dests
            assert {device(cluster, int(d)).observed_state for d in mog2} == {"writeable"}
            hosts = client.call("get_hosts").args
            assert not [k for k in hosts if "observed" in k]
            paths = client.call("get_paths", domain=cluster.domain, key=key, pathcount=3).args
            assert paths["paths"] == "2"
            assert all(f"/dev{d}/" not in paths[f"path{n}"] for n in (1, 2) for d in mog2)
        wait_until("mog2 offered again", lambda: offered(client, cluster.domain) & mog2, 10, 0.1)
