"""A native storage node (Perlbal) behaves like mogstored's HTTP side; nothing is left running."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_mogilefs.testing import ProcessGroup, StorageNode, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def node(tmp_path: Path) -> Iterator[StorageNode]:
    group = ProcessGroup()
    node = StorageNode(
        "mogt",
        "127.0.0.3",
        free_port(["127.0.0.3"]),
        [7],
        tmp_path,
        group=group,
        usage_interval=0.2,
    )
    node.start()
    yield node
    group.stop_all()


def http(
    node: StorageNode, method: str, path: str, data: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        node.base_url + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_node_serves_put_get_head_delete_like_mogstored(node: StorageNode) -> None:
    fid = "/dev7/0/000/000/0000000002.fid"
    assert http(node, "PUT", fid, b"hello")[0] == 200  # creates 0/000/000/ itself
    assert http(node, "HEAD", fid)[1]["Content-Length"] == "5"
    assert http(node, "GET", fid, Range="bytes=1-")[::2] == (206, b"ello")
    assert http(node, "MKCOL", "/dev7/x/")[0] == 400
    assert http(node, "PUT", "/dev8/0/000/000/0000000002.fid", b"x")[0] == 404  # no dev8
    assert http(node, "DELETE", fid)[0] == 204
    assert http(node, "DELETE", fid)[0] == 404


def perlbal_environ(node: StorageNode) -> dict[str, str]:
    """The environment of the node's Perlbal process (found by its config under workdir)."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if any(a.startswith(b"--config=" + bytes(node.workdir)) for a in argv):
                pairs = (proc / "environ").read_bytes().split(b"\0")
                return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
        except OSError:
            continue
    raise AssertionError(f"no Perlbal process with its config under {node.workdir}")


def test_node_parses_headers_in_c_like_mogstored(node: StorageNode) -> None:
    # mogstored enables Perlbal::XS::HTTPHeaders when it is installed; so does the node
    # (Perlbal reads PERLBAL_XS_HEADERS when it loads). scripts/system-deps.sh installs it.
    installed = subprocess.run(["perl", "-MPerlbal::XS::HTTPHeaders", "-e1"], check=False)
    assert installed.returncode == 0, "libperlbal-xs-httpheaders-perl is not installed"
    assert perlbal_environ(node)["PERLBAL_XS_HEADERS"] == "1"


def test_usage_file_is_served_and_refreshed(node: StorageNode) -> None:
    first = http(node, "GET", "/dev7/usage")
    assert first[0] == 200 and b"total: " in first[2]
    stamp = (node.device_dir(7) / "usage").stat().st_mtime_ns
    deadline = time.monotonic() + 5
    while (node.device_dir(7) / "usage").stat().st_mtime_ns == stamp:
        assert time.monotonic() < deadline, "usage file was not rewritten"
        time.sleep(0.05)


def test_stop_leaves_no_process_and_start_again_works(node: StorageNode) -> None:
    pids = [p.pid for p in node.group.processes]
    assert len(pids) == 2 and node.running
    node.stop()
    assert not node.running and node.group.processes == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    node.start()
    assert http(node, "GET", "/dev7/usage")[0] == 200


def test_process_group_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    with ProcessGroup() as group:
        proc = group.spawn(
            ["sh", "-c", "trap '' TERM; echo ready; sleep 60"],
            cwd=tmp_path,
            log_path=tmp_path / "log",
        )
        deadline = time.monotonic() + 5
        while b"ready" not in (tmp_path / "log").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        group.stop(proc, timeout=0.3)
    assert proc.returncode is not None and proc.returncode < 0
