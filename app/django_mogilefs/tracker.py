"""Talking to a set of trackers: connections, timeouts, dead-tracker skipping, failover.

Modelled on pymemcache's ``HashClient``: each tracker that fails is recorded with
the time it failed and skipped for ``dead_timeout`` seconds; the request moves on
to the next tracker. Only transport failures (refused, timed out, closed) fail
over; an ``ERR`` answer is the tracker's verdict and is raised as it is.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .exceptions import ProtocolError, TrackerUnavailableError
from .protocol import Args, encode_request, parse_response

logger = logging.getLogger(__name__)

DEFAULT_PORT = 7001
MAX_LINE = 4 * 1024 * 1024  # get_hosts/list_keys answers are long, never megabytes


def parse_trackers(trackers: str | Sequence[str]) -> list[tuple[str, int]]:
    """Turn ``"h1:7001,h2"`` or ``["h1:7001", "h2"]`` into ``[("h1", 7001), ("h2", 7001)]``."""
    items = trackers.split(",") if isinstance(trackers, str) else list(trackers)
    result = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            result.append((host or item, int(port) if port else DEFAULT_PORT))
        except ValueError as exc:
            raise ValueError(f"Invalid tracker address {item!r}: expected host:port") from exc
    if not result:
        raise ValueError("No MogileFS tracker configured (expected host:port, ...)")
    return result


class _Connection:
    """One persistent TCP connection to a tracker, reading whole response lines."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)

    def request(self, line: bytes) -> bytes:
        self.sock.sendall(line)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("tracker closed the connection without answering")
            buf += chunk
            if len(buf) > MAX_LINE:
                raise ProtocolError("tracker response line is too long")
        if buf.count(b"\n") != 1:
            # More than one line for one request: the connection is out of step.
            raise ProtocolError(f"tracker sent several lines for one request: {buf[:120]!r}")
        return buf

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class _Tracker:
    host: str
    port: int
    failed_at: float | None = None
    idle: list[_Connection] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class TrackerPool:
    """Send commands to any live tracker of a set; thread-safe.

    Args:
        trackers: ``"host:port,host:port"`` or a list of ``"host:port"``.
        connect_timeout: seconds to wait for a TCP connection (default 3).
        timeout: seconds to wait for an answer. Admin commands wait for a monitor
            round on a real tracker (up to 2.5 s), so keep this well above that
            (default 10).
        dead_timeout: seconds a failed tracker is skipped before being tried again
            (default 30). When every tracker is marked dead they are all tried anyway.
        max_idle: idle connections kept per tracker for reuse (default 4).
        socket_module: injectable for tests (pymemcache's pattern).
    """

    def __init__(
        self,
        trackers: str | Sequence[str],
        *,
        connect_timeout: float = 3.0,
        timeout: float = 10.0,
        dead_timeout: float = 30.0,
        max_idle: int = 4,
        socket_module=socket,
    ) -> None:
        self._trackers = [_Tracker(h, p) for h, p in parse_trackers(trackers)]
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.dead_timeout = dead_timeout
        self.max_idle = max_idle
        self._socket = socket_module
        self._lock = threading.Lock()

    @property
    def addresses(self) -> list[str]:
        return [str(t) for t in self._trackers]

    def request(self, command: str, args: Args | None = None) -> dict[str, str]:
        """Send one command and return the decoded ``OK`` arguments.

        Raises the matching :class:`~django_mogilefs.exceptions.TrackerError` for
        an ``ERR`` answer, or :class:`TrackerUnavailableError` when no tracker answered.
        """
        line = encode_request(command, args)
        errors = []
        for tracker in self._order():
            try:
                response = self._request_on(tracker, line)
            except (OSError, ProtocolError) as exc:
                self._mark_dead(tracker, exc)
                errors.append(f"{tracker}: {exc or type(exc).__name__}")
                continue
            self._mark_alive(tracker)
            return parse_response(response)
        raise TrackerUnavailableError(
            f"No MogileFS tracker answered {command!r} ({'; '.join(errors)})"
        )

    def close(self) -> None:
        """Close every idle connection (in-flight ones close when they finish)."""
        with self._lock:
            for tracker in self._trackers:
                for conn in tracker.idle:
                    conn.close()
                tracker.idle.clear()

    def _order(self) -> list[_Tracker]:
        """Live trackers first, starting at a random one; dead ones last, as a last resort."""
        now = time.monotonic()
        start = random.randrange(len(self._trackers))
        rotated = self._trackers[start:] + self._trackers[:start]
        live = [t for t in rotated if t.failed_at is None or now - t.failed_at >= self.dead_timeout]
        dead = [t for t in rotated if t not in live]
        return live + dead

    def _request_on(self, tracker: _Tracker, line: bytes) -> bytes:
        conn = self._take_idle(tracker)
        if conn is not None:
            try:
                response = conn.request(line)
            except (OSError, ProtocolError) as exc:
                # A pooled connection may have been closed by the tracker while idle;
                # a fresh connection decides whether the tracker itself is down.
                conn.close()
                logger.debug("Reused connection to %s failed (%s); reconnecting", tracker, exc)
            else:
                self._give_back(tracker, conn)
                return response
        conn = self._connect(tracker)
        try:
            response = conn.request(line)
        except BaseException:
            conn.close()  # never reuse a socket that timed out or broke mid-answer
            raise
        self._give_back(tracker, conn)
        return response

    def _connect(self, tracker: _Tracker) -> _Connection:
        sock = self._socket.create_connection(
            (tracker.host, tracker.port), timeout=self.connect_timeout
        )
        return _Connection(sock, self.timeout)

    def _take_idle(self, tracker: _Tracker) -> _Connection | None:
        with self._lock:
            return tracker.idle.pop() if tracker.idle else None

    def _give_back(self, tracker: _Tracker, conn: _Connection) -> None:
        with self._lock:
            if len(tracker.idle) < self.max_idle:
                tracker.idle.append(conn)
                return
        conn.close()

    def _mark_dead(self, tracker: _Tracker, exc: BaseException) -> None:
        logger.warning("MogileFS tracker %s failed (%s); trying the next one", tracker, exc)
        with self._lock:
            tracker.failed_at = time.monotonic()
            for conn in tracker.idle:
                conn.close()
            tracker.idle.clear()

    def _mark_alive(self, tracker: _Tracker) -> None:
        if tracker.failed_at is not None:
            logger.info("MogileFS tracker %s is back", tracker)
            tracker.failed_at = None
