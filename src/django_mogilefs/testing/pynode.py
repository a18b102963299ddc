"""A MogileFS storage node in Python, for machines without Perlbal.

It answers what a tracker, a client and ``mogadm check`` ask of mogstored's HTTP side,
as the Perlbal node (:mod:`.storagenode`) does: ``GET``/``HEAD`` of a file (of a
directory, ``/`` included: 200, "Directory listing disabled"), ``PUT`` (with a
``Content-Length``, chunked, or with neither: an empty file; the directories below
``devN/`` are created, ``devN`` itself must exist), ``DELETE`` and ``GET /devN/usage``,
computed at each request in mogstored's format. It runs in threads of the calling
process, so ``stop()`` and ``start()`` again take milliseconds and nothing outlives the
test run. An upload is written to a temporary file and renamed into place once
complete: a broken PUT leaves nothing behind (mogstored keeps what it got; a
``create_close`` that gives the size is refused either way).

    node = PythonStorageNode("mog1", "127.0.0.1", 7500, [1], Path("var/storage"))
    node.start()
    ...
    node.stop()
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .usage import usage_text

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
MAX_CHUNK_LINE = 4096  # a chunk's size line or a trailer line
# What mogstored (Perlbal with dirindexing off) answers for a directory, byte for byte.
LISTING_DISABLED = b"<h1>200 - OK</h1>\nDirectory listing disabled"


class BadChunk(ValueError):
    """A chunked PUT body that does not follow HTTP's chunked encoding."""


class PythonStorageNode:
    """Serves the devices ``devids`` from ``<root>/<name>/docroot`` on ``ip:port``."""

    def __init__(self, name: str, ip: str, port: int, devids: Sequence[int], root: Path) -> None:
        self.name, self.ip, self.port = name, ip, port
        self.devids = list(devids)
        self.workdir = Path(root).resolve() / name
        self.docroot = self.workdir / "docroot"
        self._server: _NodeServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"PythonStorageNode({self.name!r}, {self.base_url!r}, devids={self.devids})"

    @property
    def base_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def device_dir(self, devid: int) -> Path:
        return self.docroot / f"dev{devid}"

    def start(self, timeout: float = 15.0) -> PythonStorageNode:
        """Create the device directories and listen; ready when this returns.

        ``timeout`` is accepted for the Perlbal node's signature: binding is immediate.
        """
        if self.running:
            return self
        for devid in self.devids:
            self.device_dir(devid).mkdir(parents=True, exist_ok=True)
        self._server = _NodeServer((self.ip, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"storage-node-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and drop open connections (files stay on disk; ``start()``
        again works)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.drop_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = self._thread = None


class _NodeServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], node: PythonStorageNode) -> None:
        self.node = node
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went, or stop() dropped the connection
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        """Close the kept-alive connections too, as a mogstored that stops does: a
        client's pooled connection must not be answered by a stopped node."""
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _NodeServer
    protocol_version = "HTTP/1.1"
    server_version = "django-mogilefs-testing-node"

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.server.node.name, format % args)

    # -- the methods -------------------------------------------------------------------

    def do_GET(self) -> None:
        self._read(with_body=True)

    def do_HEAD(self) -> None:
        self._read(with_body=False)

    def do_PUT(self) -> None:
        target = self._target()
        if target is None:
            return
        body = self._put_body()
        if body is None:
            return
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in body:
                    out.write(chunk)
            os.replace(tmp, target)
        except (OSError, BadChunk) as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, BadChunk):
                self._reply(HTTPStatus.BAD_REQUEST, str(exc))
            else:  # the body ended short: the client is gone, no answer
                self.close_connection = True
            return
        self._reply(HTTPStatus.OK)

    def do_DELETE(self) -> None:
        target = self._target()
        if target is None:
            return
        try:
            target.unlink()
        except FileNotFoundError:
            self._reply(HTTPStatus.NOT_FOUND)
            return
        except IsADirectoryError:
            self._reply(HTTPStatus.FORBIDDEN, "a directory")
            return
        self._reply(HTTPStatus.NO_CONTENT)

    # -- helpers -----------------------------------------------------------------------

    def _read(self, *, with_body: bool) -> None:
        target = self._target(joined=True)
        if target is None:
            return
        if target.name == "usage" and target.parent.parent == self.server.node.docroot:
            now = int(time.time())  # mogstored's file was written when its time says
            body = usage_text(target.parent, now).encode()
            self._send_headers(len(body), now)
            if with_body:
                self.wfile.write(body)
            return
        try:
            handle = target.open("rb")
        except FileNotFoundError:
            self._reply(HTTPStatus.NOT_FOUND, with_body=with_body)
            return
        except IsADirectoryError:  # the docroot too: mogadm check asks for GET /
            self._reply(
                HTTPStatus.OK, body=LISTING_DISABLED, content_type="text/html", with_body=with_body
            )
            return
        with handle:
            st = os.fstat(handle.fileno())
            self._send_headers(st.st_size, st.st_mtime)
            if with_body:
                shutil.copyfileobj(handle, self.wfile, CHUNK_SIZE)

    def _send_headers(self, size: int, mtime: float) -> None:
        """A file's 200 headers as mogstored's Perlbal sends them (and ``Date``, ``Server``):
        its write time, which the storage's ``get_modified_time`` reads, and ``text/plain``,
        Perlbal's type for a ``.fid``."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Last-Modified", self.date_time_string(int(mtime)))
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(size))
        self.end_headers()

    def _target(self, *, joined: bool = False) -> Path | None:
        """The file the path names, inside one of this node's devices; else answer 4xx.

        ``joined`` (GET, HEAD): the path is joined to the docroot as mogstored's Perlbal
        does, so empty segments do not count and ``/`` (or ``/devN``) is a directory.
        Else (PUT, DELETE) it must name a file below a device, with no empty segment.
        """
        parts = unquote(urlsplit(self.path).path).split("/")[1:]
        node = self.server.node
        if joined:
            parts = [part for part in parts if part not in ("", ".")]
            if not parts:
                return node.docroot
        needed = 1 if joined else 2  # PUT and DELETE name a file below the device
        device = parts[0] if len(parts) >= needed else ""
        if not device.startswith("dev") or device[3:] not in {str(d) for d in node.devids}:
            self._reply(HTTPStatus.NOT_FOUND, f"no device {device or '/'} on this node")
            return None
        if any(part in ("", ".", "..") for part in parts[1:]):
            self._reply(HTTPStatus.BAD_REQUEST, "empty, '.' or '..' path segment")
            return None
        return node.docroot.joinpath(*parts)

    def _put_body(self) -> Iterator[bytes] | None:
        """The PUT's body as mogstored's Perlbal reads it; ``None`` once answered 400.

        ``Transfer-Encoding: chunked`` (that exact value): de-chunked. Else
        ``Content-Length`` bytes; with no length, none: the file is empty, and the
        connection is closed, as what follows the headers is not a request.
        """
        if self.headers.get("Transfer-Encoding") == "chunked":
            return self._chunked_body()
        raw = self.headers.get("Content-Length")
        if raw is None:
            self.close_connection = True
            return iter(())
        if not (raw.isascii() and raw.isdigit()):  # Perlbal would store an empty file
            self._reply(HTTPStatus.BAD_REQUEST, f"bad Content-Length {raw!r}")
            return None
        return self._body_bytes(int(raw))

    def _body_bytes(self, length: int) -> Iterator[bytes]:
        left = length
        while left:
            chunk = self.rfile.read(min(left, CHUNK_SIZE))
            if not chunk:
                raise ConnectionError(f"body ended {left} bytes short")
            yield chunk
            left -= len(chunk)

    def _chunked_body(self) -> Iterator[bytes]:
        """The data of a chunked body; chunk extensions and the trailer are dropped."""
        while True:
            size = self._chunk_line().split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9a-fA-F]+", size):
                raise BadChunk(f"bad chunk size {size.decode('latin-1')!r}")
            if int(size, 16) == 0:
                while self._chunk_line():  # the trailer ends with an empty line
                    pass
                return
            yield from self._body_bytes(int(size, 16))
            if self._chunk_line():
                raise BadChunk("chunk longer than its size")

    def _chunk_line(self) -> bytes:
        line = self.rfile.readline(MAX_CHUNK_LINE + 1)
        if len(line) > MAX_CHUNK_LINE:
            raise BadChunk(f"chunk line over {MAX_CHUNK_LINE} bytes")
        if not line.endswith(b"\n"):
            raise ConnectionError("body ended in a chunk line")
        return line.rstrip(b"\r\n")

    def _reply(
        self,
        status: HTTPStatus,
        reason: str = "",
        *,
        body: bytes | None = None,
        content_type: str = "",
        with_body: bool = True,
    ) -> None:
        if body is None:
            body = f"{status.value} {status.phrase}{': ' + reason if reason else ''}\n".encode()
        if status == HTTPStatus.NO_CONTENT:
            body = b""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Length", str(len(body)))
        if status >= 400:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if with_body:
            self.wfile.write(body)
