"""The ``mogile_cluster`` fixture and the fake tracker's behaviour with real storage nodes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from faketracker.client import TrackerClient
from faketracker.cluster import CLASSES, MogileCluster

pytestmark = pytest.mark.integration
TESTS = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


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


def test_cluster_has_the_domain_classes_and_writeable_devices(
    mogile_cluster: MogileCluster, tracker_client: TrackerClient
) -> None:
    args = tracker_client.call("get_domains").args
    dom = next(
        n for n in range(1, int(args["domains"]) + 1) if args[f"domain{n}"] == mogile_cluster.domain
    )
    classes = {
        args[f"domain{dom}class{c}name"]: int(args[f"domain{dom}class{c}mindevcount"])
        for c in range(1, int(args[f"domain{dom}classes"]) + 1)
    }
    assert set(CLASSES) <= set(classes)
    writeable = [d for d in mogile_cluster.devices() if d["observed_state"] == "writeable"]
    assert writeable and all(d["mb_total"] for d in writeable)
    if mogile_cluster.fake:
        assert classes == {"default": 2, **CLASSES}
        assert len(writeable) == 3


def test_a_stopped_node_is_skipped_and_comes_back(
    mogile_cluster: MogileCluster, tracker_client: TrackerClient
) -> None:
    if not mogile_cluster.fake:
        pytest.skip("stopping a storage node needs the fake cluster's node controls")
    domain, key = mogile_cluster.domain, f"fixture-test/{uuid.uuid4().hex}"
    store(tracker_client, domain, key, b"avatar bytes", "avatar")
    wait_for(
        lambda: tracker_client.call("file_info", domain=domain, key=key).args["devcount"] == "3",
        what="3 copies",
    )
    mog3 = mogile_cluster.node("mog3")
    try:
        mogile_cluster.stop_node("mog3")
        paths = tracker_client.call("get_paths", domain=domain, key=key, pathcount=3).args
        assert paths["paths"] == "2"
        assert all(mog3.base_url not in paths[f"path{n}"] for n in (1, 2))
        multi = tracker_client.call("create_open", domain=domain, key=key + "-x", multi_dest=1).args
        assert multi["dev_count"] == "2"
        assert "3" not in {multi["devid_1"], multi["devid_2"]}
    finally:
        mogile_cluster.start_node("mog3")
    assert all(d["observed_state"] == "writeable" for d in mogile_cluster.devices())
    assert (
        tracker_client.call("get_paths", domain=domain, key=key, pathcount=3).args["paths"] == "3"
    )
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

    wait_for(gone, what="the rejected upload to be deleted")


def test_faketracker_runs_from_the_command_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faketracker",
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

        client = wait_for(connect, what="the fake tracker to listen")
        with client:
            assert client.request("noop") == "OK "
            assert client.call("create_domain", domain="clidom").args == {"domain": "clidom"}
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
