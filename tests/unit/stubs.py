"""Scripted stand-ins for unit tests: a tracker that answers from a function, storage
nodes whose HTTP answers can be made to fail, and a cluster of the two (the ``cluster``
fixture of tests/unit/conftest.py)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from django_mogilefs.client import MogileFSClient
from django_mogilefs.testing import free_port

Answer = Callable[[str, dict[str, str]], bytes | None]


class _QuietTCPServer(socketserver.ThreadingTCPServer):
    """Clients that hang up mid-exchange are part of the tests, not errors to print."""

    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass


class StubTracker:
    """Answers each request line with ``answer(command, args)``; ``None`` closes the socket."""

    def __init__(self, answer: Answer, host: str = "127.0.0.1", port: int = 0) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.raw: list[bytes] = []
        self.hang_up_after_answer = False  # close each connection after one answer
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    stub.raw.append(line)
                    command, _, rest = line.decode().strip().partition(" ")
                    args = dict(parse_qsl(rest, keep_blank_values=True))
                    stub.requests.append((command, args))
                    reply = stub.answer(command, args)
                    if reply is None:
                        return
                    self.wfile.write(reply)
                    if stub.hang_up_after_answer:
                        return

        self.server = _QuietTCPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.address = f"{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def commands(self) -> list[str]:
        return [c for c, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StubNode:
    """An HTTP storage node: PUT stores, GET serves; ``status[path]`` forces an answer."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mtimes: dict[str, float] = {}
        self.status: dict[str, int] = {}
        self.log: list[tuple[str, str]] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 200 and self.path in node.mtimes and self.command != "PUT":
                    self.send_header(
                        "Last-Modified", formatdate(node.mtimes[self.path], usegmt=True)
                    )
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                node.log.append(("PUT", self.path))
                status = node.status.get(self.path, 200)
                if status == 200:
                    node.files[self.path] = body
                    node.mtimes[self.path] = time.time()
                self._reply(status, b"stored" if status == 200 else b"<h1>Error</h1>")

            def do_GET(self) -> None:
                node.log.append((self.command, self.path))
                status = node.status.get(self.path)
                if status is None:
                    status = 200 if self.path in node.files else 404
                body = node.files.get(self.path, b"") if status == 200 else b"<h1>Not Found</h1>"
                self._reply(status, body)

            do_HEAD = do_GET

        self.server = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentPort:
    """A port that listens but never accepts or answers: a node that is gone.

    The kernel completes connections into the backlog, so a client's connect
    succeeds and its request then waits for an answer that never comes.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.address = f"{host}:{self.port}"

    def close(self) -> None:
        self.sock.close()


class ScriptedPort:
    """Accepts every connection and hands it to ``script(conn)`` in a thread of its own."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._script = script
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client may give up first
            self._script(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accept() up on Linux
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def closed_port() -> str:
    """An address where nothing listens (connection refused)."""
    return f"127.0.0.1:{free_port(('127.0.0.1',))}"


def ok(**args: object) -> bytes:
    from urllib.parse import urlencode

    return ("OK " + urlencode({k: str(v) for k, v in args.items()}) + "\r\n").encode()


# get_domains as the real 2.73 tracker answered it (transcript, "classes" section).
REAL_GET_DOMAINS = (
    b"OK domain1class2hashtype=NONE&domain1class1name=default&domain1class2mindevcount=1"
    b"&domain1class2name=thumb&domain1class1hashtype=NONE&domain1class1mindevcount=2"
    b"&domain1=testdom&domains=1&domain1class1replpolicy=MultipleHosts%28%29"
    b"&domain1class2replpolicy=MultipleHosts%28%29&domain1class3name=md5class&domain1classes=4"
    b"&domain1class3hashtype=MD5&domain1class4replpolicy=MultipleHosts%28%29"
    b"&domain1class3mindevcount=2&domain1class3replpolicy=MultipleHosts%282%29"
    b"&domain1class4mindevcount=3&domain1class4hashtype=NONE&domain1class4name=avatar\r\n"
)


class Cluster:
    """A stub tracker in front of one stub node, answering the file commands."""

    def __init__(self, dests=("/dev1/0/000/000/0000000002.fid", "/dev2/0/000/000/0000000002.fid")):
        self.node = StubNode()
        self.dests = list(dests)
        self.paths = [self.node.url(p) for p in self.dests]
        self.keys = ["avatars/café b.jpg"]
        self.tracker = StubTracker(self.answer)
        self.client = MogileFSClient([self.tracker.address], "testdom")

    def answer(self, cmd, args):
        if cmd == "get_domains":
            return REAL_GET_DOMAINS
        if cmd == "create_open":
            reply = {"fid": 2, "dev_count": len(self.dests)}
            for i, path in enumerate(self.dests, 1):
                reply[f"devid_{i}"] = i
                reply[f"path_{i}"] = self.node.url(path)
            return ok(**reply)
        if cmd == "get_paths":
            return ok(paths=len(self.paths), **{f"path{i}": p for i, p in enumerate(self.paths, 1)})
        if cmd == "list_keys":
            if args.get("after"):
                return b"ERR none_match No+keys+match\r\n"
            keys = {f"key_{i}": k for i, k in enumerate(self.keys, 1)}
            return ok(key_count=len(self.keys), next_after=self.keys[-1], **keys)
        return b"OK \r\n"

    def close(self):
        self.tracker.close()
        self.node.close()
