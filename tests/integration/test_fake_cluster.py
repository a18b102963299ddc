"""The ``mogile_cluster`` fixture and the fake tracker's behaviour with real storage nodes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django_mogilefs.testing import free_port
from django_mogilefs.testing.cluster import CLASSES, MogileCluster
from django_mogilefs.testing.faketracker.client import TrackerClient
from ownenv import own_environ
from waiting import wait_until

from integration.nodecontrol import NodeControl, NodeControlUnavailable

pytestmark = pytest.mark.integration
REPLICATION_DEADLINE = float(os.environ.get("MOGILEFS_REPLICATION_DEADLINE", "60"))
DEV_IN_PATH = re.compile(r"/dev(\d+)/")
# The console script django-mogilefs installs beside this Python.
FAKETRACKER = Path(sys.executable).with_name("mogilefs-faketracker")


def store(client: TrackerClient, domain: str, key: str, body: bytes, cls: str) -> str:
    opened = client.call("create_open", domain=domain, key=key, **{"class": cls})
    assert opened.ok, opened.raw
    put = urllib.request.Request(opened.args["path"], data=body, method="PUT")
    with urllib.request.urlopen(put, timeout=10) as resp:
        assert resp.status == 200
    closed = client.call(
        "create_close",
        domain=domain,
        key=key,
        size=len(body),
        fid=opened.args["fid"],
        devid=opened.args["devid"],
        path=opened.args["path"],
    )
    assert closed.ok, closed.raw
    return opened.args["path"]


def classes(client: TrackerClient, domain: str) -> dict[str, int]:
    """The domain's classes and their mindevcount, from ``get_domains``."""
    args = client.call("get_domains").args
    dom = next(n for n in range(1, int(args["domains"]) + 1) if args[f"domain{n}"] == domain)
    return {
        args[f"domain{dom}class{c}name"]: int(args[f"domain{dom}class{c}mindevcount"])
        for c in range(1, int(args[f"domain{dom}classes"]) + 1)
    }


def path_devids(client: TrackerClient, domain: str, key: str) -> list[int]:
    """The device of each path ``get_paths`` answers (MogileFS paths hold ``/dev<id>/``)."""
    args = client.call("get_paths", domain=domain, key=key, pathcount=10).args
    paths = [args[f"path{n}"] for n in range(1, int(args["paths"]) + 1)]
    return [int(m.group(1)) for m in map(DEV_IN_PATH.search, paths) if m]


def test_cluster_has_the_domain_classes_and_writeable_devices(
    mogile_cluster: MogileCluster, tracker_client: TrackerClient
) -> None:
    found = classes(tracker_client, mogile_cluster.domain)
    assert set(CLASSES) <= set(found)
    writeable = [d for d in mogile_cluster.devices() if d.observed_state == "writeable"]
    assert writeable and all(d.mb_total for d in writeable)
    if mogile_cluster.fake:
        assert found == {"default": 2, **CLASSES}
        assert len(writeable) == 6, "three nodes with two devices each"


@pytest.fixture
def node_control(mogile_cluster: MogileCluster) -> NodeControl:
    try:
        return NodeControl.for_cluster(mogile_cluster)
    except NodeControlUnavailable as exc:
        pytest.skip(str(exc))


def test_a_stopped_node_is_skipped_and_comes_back(
    mogile_cluster: MogileCluster, tracker_client: TrackerClient, node_control: NodeControl
) -> None:
    domain, key = mogile_cluster.domain, f"fixture-test/{uuid.uuid4().hex}"
    copies = classes(tracker_client, domain)["avatar"]
    store(tracker_client, domain, key, b"avatar bytes", "avatar")
    try:
        wait_until(
            f"{copies} copies",
            lambda: len(path_devids(tracker_client, domain, key)) == copies,
            REPLICATION_DEADLINE,
            interval=0.1,
        )
        before = set(path_devids(tracker_client, domain, key))
        down = node_control.stop()
        try:
            assert down & before, f"the stopped node's devices {down} hold no copy of {before}"
            assert set(path_devids(tracker_client, domain, key)) == before - down
            multi = tracker_client.call(
                "create_open", domain=domain, key=f"{key}-x", multi_dest=1
            ).args
            dests = {int(multi[f"devid_{n}"]) for n in range(1, int(multi["dev_count"]) + 1)}
            alive = [d for d in mogile_cluster.devices() if d.status == "alive"]
            usable = {d.devid for d in alive} - down
            usable_hosts = {d.hostid for d in alive if d.devid in usable}
            assert dests <= usable
            # create_open offers a device on each of up to 3 hosts.
            assert len(dests) == min(3, len(usable_hosts))
        finally:
            node_control.start()
        assert not node_control.avoided()
        assert set(path_devids(tracker_client, domain, key)) == before
    finally:
        assert tracker_client.call("delete", domain=domain, key=key).ok


def test_failed_close_removes_the_upload_from_the_node(
    mogile_cluster: MogileCluster, tracker_client: TrackerClient
) -> None:
    domain, key = mogile_cluster.domain, f"fixture-test/{uuid.uuid4().hex}"
    opened = tracker_client.call("create_open", domain=domain, key=key, **{"class": "thumb"})
    path = opened.args["path"]
    urllib.request.urlopen(urllib.request.Request(path, data=b"12345", method="PUT"), timeout=10)
    reply = tracker_client.call(
        "create_close",
        domain=domain,
        key=key,
        size=6,
        fid=opened.args["fid"],
        devid=opened.args["devid"],
        path=path,
    )
    assert (reply.code, reply.message) == ("size_mismatch", f"Expected: 6; actual: 5; path: {path}")

    def gone() -> bool:
        try:
            urllib.request.urlopen(path, timeout=5)
        except urllib.error.HTTPError as exc:
            return exc.code == 404
        return False

    wait_until("the rejected upload deleted", gone, 10, interval=0.1)


def test_faketracker_runs_from_the_command_line(tmp_path: Path) -> None:
    port = free_port(("127.0.0.1",))
    env = own_environ()
    proc = subprocess.Popen(
        [
            str(FAKETRACKER),
            "--listen",
            f"127.0.0.1:{port}",
            "--monitor-interval",
            "0.5",
            "--admin-delay",
            "0",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def connect() -> TrackerClient | None:
            try:
                return TrackerClient(f"127.0.0.1:{port}", timeout=5)
            except OSError:
                return None

        client = wait_until("the fake tracker listening", connect, 10, interval=0.1)
        with client:
            assert client.request("noop") == "OK "
            assert client.call("create_domain", domain="clidom").args == {"domain": "clidom"}
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
