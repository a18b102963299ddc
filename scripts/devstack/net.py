"""Ports and readiness waits, all bounded by a deadline."""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Callable, Sequence


class NotReady(RuntimeError):
    """A service did not become ready before its deadline."""


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now (SO_REUSEADDR, as the servers use it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(hosts: Sequence[str] = ("127.0.0.1",), avoid: set[int] | None = None) -> int:
    """A port the kernel hands out that is also free on every one of ``hosts``."""
    avoid = avoid or set()
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((hosts[0], 0))
            port = sock.getsockname()[1]
        if port not in avoid and all(port_free(h, port) for h in hosts):
            return port
    raise RuntimeError(f"no free port on {', '.join(hosts)}")


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def memcached_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a memcached listens on ``host:port`` (it answers ``version``)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(64).startswith(b"VERSION ")
    except OSError:
        return False


def http_status(url_host: str, port: int, path: str, timeout: float = 2.0) -> int | None:
    """The status of ``GET path``, or ``None`` when nothing answers."""
    conn = http.client.HTTPConnection(url_host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.1,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``check`` until it is true; raise :class:`NotReady` after ``timeout`` seconds.

    ``abort`` is polled too and may return a reason to give up early (a process that died).
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if abort is not None and (reason := abort()):
            raise NotReady(f"{what}: {reason}")
        if time.monotonic() >= deadline:
            raise NotReady(f"{what}: not ready after {timeout:g}s")
        time.sleep(interval)
