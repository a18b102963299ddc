"""A native storage node (Perlbal) behaves like mogstored's HTTP side, and the Python node
answers as it does; nothing is left running."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_mogilefs.testing import ProcessGroup, PythonStorageNode, StorageNode, free_port

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


# -- the Python node judged against this one (mogstored's own HTTP server) ------------------


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[tuple[StorageNode, PythonStorageNode]]:
    """A Perlbal node and a Python node, each serving device 7."""
    group = ProcessGroup()
    perlbal = StorageNode(
        "perlbal", "127.0.0.3", free_port(["127.0.0.3"]), [7], tmp_path, group=group
    )
    python = PythonStorageNode("python", "127.0.0.3", free_port(["127.0.0.3"]), [7], tmp_path)
    perlbal.start()
    python.start()
    yield perlbal, python
    python.stop()
    group.stop_all()


def exchange(node: StorageNode | PythonStorageNode, request: bytes) -> tuple[int, bytes, dict]:
    """One raw request (sent as is, the sending side then ended): status, body, headers."""
    with socket.create_connection((node.ip, node.port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), body, headers


def get(node: StorageNode | PythonStorageNode, method: str, path: str) -> tuple[int, bytes, dict]:
    return exchange(node, f"{method} {path} HTTP/1.0\r\n\r\n".encode())


COMPARED = ("content-type", "content-length", "last-modified")


def test_the_python_node_reads_as_mogstored_does(
    twins: tuple[StorageNode, PythonStorageNode],
) -> None:
    for node in twins:
        assert get(node, "GET", "/dev7/0/f.fid")[0] == 404
        put = b"PUT /dev7/0/f.fid HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"
        assert exchange(node, put)[0] == 200
        written = 1_700_000_000
        os.utime(node.device_dir(7) / "0" / "f.fid", (written, written))
    # mogadm check reads / and then //devN/usage; the tracker and the clients read files.
    for method, path in [
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/dev7"),
        ("GET", "//dev7/0/"),
        ("GET", "/dev7/0/f.fid"),
        ("HEAD", "/dev7/0/f.fid"),
        ("GET", "//dev7//0/f.fid"),
    ]:
        answers = [get(node, method, path) for node in twins]
        perlbal, python = ((s, b, {k: h.get(k) for k in COMPARED}) for s, b, h in answers)
        assert python == perlbal, f"{method} {path}"
    for path in ("/dev8/", "/dev7/none.fid", "/nothing"):
        assert [get(node, "GET", path)[0] for node in twins] == [404, 404], path
    usages = [get(node, "GET", "//dev7/usage") for node in twins]
    assert [(s, h["content-type"], "last-modified" in h) for s, _, h in usages] == [
        (200, "text/plain", True)
    ] * 2
    keys = [[line.split(":")[0] for line in b.decode().splitlines()] for _, b, _ in usages]
    assert keys[0] == keys[1]


@pytest.mark.parametrize(
    ("put", "stored"),
    [
        (b"Content-Length: 5\r\n\r\nhello", b"hello"),
        (b"Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nchu\r\n4\r\nnked\r\n0\r\n\r\n", b"chunked"),
        (b"\r\nbytes with no length", b""),  # the Perl client's largefile mode opens so
    ],
    ids=["content-length", "chunked", "no-length"],
)
def test_the_python_node_stores_puts_as_mogstored_does(
    twins: tuple[StorageNode, PythonStorageNode], put: bytes, stored: bytes
) -> None:
    for node in twins:
        status, _, _ = exchange(node, b"PUT /dev7/0/p.fid HTTP/1.1\r\nHost: n\r\n" + put)
        assert (status, get(node, "GET", "/dev7/0/p.fid")[:2]) == (200, (200, stored)), node
