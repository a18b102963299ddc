"""The storage node written in Python: what the tracker and the client ask of mogstored."""

from __future__ import annotations

import http.client
import os
import socket
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from django_mogilefs.testing import PythonStorageNode, free_port

pytestmark = pytest.mark.unit


@pytest.fixture
def node(tmp_path: Path) -> Iterator[PythonStorageNode]:
    node = PythonStorageNode("mog1", "127.0.0.1", free_port(("127.0.0.1",)), [1, 4], tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def call(
    node: PythonStorageNode,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection(node.ip, node.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_get_head_delete_roundtrip(node: PythonStorageNode) -> None:
    path = "/dev4/0/000/000/0000000042.fid"
    assert call(node, "PUT", path, b"avatar bytes")[0] == 200
    assert (node.device_dir(4) / "0/000/000/0000000042.fid").read_bytes() == b"avatar bytes"
    status, body, headers = call(node, "GET", path)
    assert (status, body, headers["content-length"]) == (200, b"avatar bytes", "12")
    status, body, headers = call(node, "HEAD", path)
    assert (status, body, headers["content-length"]) == (200, b"", "12")
    assert call(node, "DELETE", path)[0] == 204
    assert call(node, "GET", path)[0] == 404
    assert call(node, "DELETE", path)[0] == 404


def test_put_replaces_and_an_empty_file_is_a_file(node: PythonStorageNode) -> None:
    assert call(node, "PUT", "/dev1/a.fid", b"first")[0] == 200
    assert call(node, "PUT", "/dev1/a.fid", b"")[0] == 200
    status, body, headers = call(node, "GET", "/dev1/a.fid")
    assert (status, body, headers["content-length"]) == (200, b"", "0")


def test_a_file_is_sent_with_its_write_time_as_mogstored_sends_it(
    node: PythonStorageNode,
) -> None:
    # MogileFSStorage.get_modified_time reads Last-Modified from a HEAD of a copy.
    call(node, "PUT", "/dev1/0/000/000/0000000007.fid", b"seven")
    written = 1_700_000_000.75
    os.utime(node.device_dir(1) / "0/000/000/0000000007.fid", (written, written))
    for method in ("GET", "HEAD"):
        status, _, headers = call(node, method, "/dev1/0/000/000/0000000007.fid")
        assert status == 200
        assert headers["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
        assert headers["content-type"] == "text/plain"  # Perlbal's, for a .fid
    status, body, headers = call(node, "GET", "/dev1/usage")
    stamp = int(dict(line.split(": ", 1) for line in body.decode().splitlines())["time"])
    assert headers["last-modified"] == formatdate(stamp, usegmt=True)


def test_usage_is_mogstored_s_format_and_fresh(node: PythonStorageNode) -> None:
    status, body, _ = call(node, "GET", "/dev1/usage")
    fields = dict(line.split(": ", 1) for line in body.decode().splitlines())
    assert status == 200
    assert list(fields) == ["available", "device", "disk", "time", "total", "use", "used"]
    assert fields["disk"] == str(node.device_dir(1))
    assert int(fields["total"]) > int(fields["used"]) > 0
    assert not (node.device_dir(1) / "usage").exists()  # computed, nothing written


def test_bad_requests_get_clear_errors_and_write_nothing(node: PythonStorageNode) -> None:
    status, body, _ = call(node, "PUT", "/dev2/x.fid", b"data")
    assert (status, b"no device dev2" in body) == (404, True)
    status, body, _ = call(node, "PUT", "/dev1/../escape.fid", b"data")
    assert (status, b"'..'" in body) == (400, True)
    status, body, _ = call(node, "PUT", "/dev1/a//b.fid", b"data")
    assert status == 400
    assert call(node, "GET", "/dev1/../dev1/usage")[0] == 400
    assert call(node, "PUT", "/dev1/x.fid", b"data", {"Content-Length": "four"})[0] == 400
    assert files_under(node.docroot) == []


def raw_exchange(node: PythonStorageNode, request: bytes) -> bytes:
    """Send ``request``, end the sending side, and read until the node closes."""
    with socket.create_connection((node.ip, node.port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(4096), b""))


def test_a_chunked_put_is_stored_as_mogstored_stores_it(node: PythonStorageNode) -> None:
    conn = http.client.HTTPConnection(node.ip, node.port, timeout=5)
    try:
        conn.request("PUT", "/dev1/c.fid", body=iter([b"chunk", b"y bacon\n"]))  # chunked
        assert conn.getresponse().read() and conn.sock is not None
        conn.request("GET", "/dev1/c.fid")  # the same connection: the body was all read
        assert conn.getresponse().read() == b"chunky bacon\n"
    finally:
        conn.close()
    # A chunk extension and a trailer, as the HTTP/1.1 grammar allows them.
    answer = raw_exchange(
        node,
        b"PUT /dev4/e.fid HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;name=value\r\nabc\r\n0\r\nX-Checksum: none\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert (node.device_dir(4) / "e.fid").read_bytes() == b"abc"


def test_a_put_without_a_length_stores_an_empty_file_as_mogstored(
    node: PythonStorageNode,
) -> None:
    # The Perl client's largefile mode creates the file with a PUT of no body and no
    # length (LWP's). Perlbal reads no body it has no Content-Length for (nor a chunked
    # encoding): the file is empty, whatever follows the headers. The node hangs up, as
    # the bytes after the headers are not a request.
    call(node, "PUT", "/dev1/x.fid", b"an older copy")
    answer = raw_exchange(node, b"PUT /dev1/x.fid HTTP/1.1\r\nHost: n\r\n\r\nbody bytes")
    assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in answer
    assert call(node, "GET", "/dev1/x.fid")[:2] == (200, b"")
    assert files_under(node.docroot) == ["dev1/x.fid"]


def test_a_malformed_chunk_is_refused_and_writes_nothing(node: PythonStorageNode) -> None:
    answer = raw_exchange(
        node,
        b"PUT /dev1/m.fid HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\nzz\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400 ") and b"bad chunk size 'zz'" in answer
    assert files_under(node.docroot) == []


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"PUT /dev1/keep.fid HTTP/1.1\r\nHost: n\r\nContent-Length: 100\r\n\r\nshort",
        b"PUT /dev1/keep.fid HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nshort\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_a_broken_upload_leaves_nothing_behind(
    node: PythonStorageNode, request_bytes: bytes
) -> None:
    call(node, "PUT", "/dev1/keep.fid", b"old copy")
    # The node sees the body end short, removes its temporary file, then hangs up
    # without an answer (waiting for a fixed time instead raced its mkstemp).
    assert raw_exchange(node, request_bytes) == b""
    assert files_under(node.docroot) == ["dev1/keep.fid"]
    status, body, _ = call(node, "GET", "/dev1/keep.fid")
    assert (status, body) == (200, b"old copy")


LISTING_DISABLED = b"<h1>200 - OK</h1>\nDirectory listing disabled"


def test_the_root_and_directories_answer_as_mogstored_does(node: PythonStorageNode) -> None:
    # mogadm check GETs http://host:port/ and then http://host:port//devN/usage: mogstored's
    # Perlbal joins the path to its docroot, and a directory answers 200, listing disabled.
    call(node, "PUT", "/dev1/dir/f.fid", b"x")
    for path in ("/", "/dev1", "/dev4/", "/dev1/dir", "/dev1//dir/"):
        status, body, headers = call(node, "GET", path)
        assert (status, body, headers["content-type"]) == (200, LISTING_DISABLED, "text/html")
    status, body, headers = call(node, "HEAD", "/")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(LISTING_DISABLED)))
    status, body, _ = call(node, "GET", "//dev1/usage")
    assert status == 200 and body.startswith(b"available: ")
    assert call(node, "GET", "//dev1//dir/f.fid")[:2] == (200, b"x")
    assert call(node, "GET", "/dev2/")[0] == 404  # not a device of this node
    assert call(node, "GET", "/nothing")[0] == 404


def test_a_directory_is_not_a_file(node: PythonStorageNode) -> None:
    call(node, "PUT", "/dev1/dir/f.fid", b"x")
    assert call(node, "DELETE", "/dev1/dir")[0] == 403
    assert files_under(node.docroot) == ["dev1/dir/f.fid"]


def test_stop_refuses_connections_and_start_serves_the_same_files(
    node: PythonStorageNode,
) -> None:
    call(node, "PUT", "/dev1/f.fid", b"kept")
    node.stop()
    assert not node.running
    with pytest.raises(ConnectionRefusedError):
        call(node, "GET", "/dev1/f.fid")
    node.start()
    assert node.running
    assert call(node, "GET", "/dev1/f.fid")[:2] == (200, b"kept")


def test_stop_drops_kept_alive_connections(node: PythonStorageNode) -> None:
    # A pooled connection (requests', the fake tracker's) must not outlive the node.
    call(node, "PUT", "/dev1/f.fid", b"kept")
    conn = http.client.HTTPConnection(node.ip, node.port, timeout=5)
    try:
        conn.request("GET", "/dev1/f.fid")
        assert conn.getresponse().read() == b"kept"
        node.stop()
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            conn.request("GET", "/dev1/f.fid")
            conn.getresponse()
    finally:
        conn.close()
