"""Talking to a set of trackers: connections, timeouts, dead-tracker skipping, failover.

Modelled on pymemcache's ``HashClient``: each tracker that fails is recorded with
the time it failed and skipped for ``dead_timeout`` seconds; the request moves on
to the next tracker. Only transport failures (refused, timed out, closed) fail
over; an ``ERR`` answer is the tracker's verdict and is raised as it is.

Retries: an idle pooled connection the tracker has closed is replaced and the
request sent once more (it never reached the tracker). A request that timed out
is never sent again to the same tracker, but it does move on to the next one, as
failover requires: a tracker that was only slow may then have run it too (a
second ``delete`` answers ``unknown_key``). Keep ``timeout`` well above the
tracker's slowest command so that this stays the exception.

Names: a tracker name that resolves to several addresses (a Docker Swarm service's
``tasks.<name>``, a Kubernetes headless service) is that many trackers. Names are
looked up again in the background every ``resolve_interval`` seconds (sooner after a
tracker fails), never in a request's way, so a tracker that moves to another machine
is found at its new address.

Lost answers: when a request may have run on a tracker whose answer never came (sent,
then a timeout, a reset or an end of file) and the next tracker answers ``ERR``, that
error is marked ``after_lost_answer`` and checked by :mod:`.lost_answers` against the
trackers' shared state: a ``delete`` answering ``unknown_key`` there is a success. A
first-attempt ``ERR`` is the tracker's verdict and is raised as it is.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import random
import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import lost_answers, metrics
from .exceptions import ProtocolError, TrackerError, TrackerUnavailableError
from .protocol import Args, encode_request, parse_response

logger = logging.getLogger(__name__)

DEFAULT_PORT = 7001
MAX_LINE = 4 * 1024 * 1024  # get_hosts/list_keys answers are long, never megabytes


def parse_trackers(trackers: str | Sequence[str]) -> list[tuple[str, int]]:
    """Turn ``"h1:7001,h2"`` or ``["h1:7001", "[::1]:7001"]`` into ``(host, port)`` pairs.

    A missing port is 7001; IPv6 addresses take brackets when a port follows.
    """
    items = trackers.split(",") if isinstance(trackers, str) else list(trackers)
    result = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else rest
        elif item.count(":") == 1:
            host, _, port = item.partition(":")
        else:  # a name, an IPv4 address, or a bare IPv6 address: no port
            host, port = item, ""
        try:
            if not host:
                raise ValueError("empty host")
            result.append((host, int(port) if port else DEFAULT_PORT))
        except ValueError as exc:
            raise ValueError(f"Invalid tracker address {item!r}: expected host:port") from exc
    if not result:
        raise ValueError("No MogileFS tracker configured (expected host:port, ...)")
    return result


def resolve(host: str, port: int, timeout: float) -> tuple[str, int]:
    """``(address, port)`` for ``host``: the first of :func:`resolve_all`'s."""
    return resolve_all(host, port, timeout)[0]


def resolve_all(host: str, port: int, timeout: float) -> list[tuple[str, int]]:
    """Every ``(address, port)`` of ``host``, the name looked up within ``timeout`` seconds.

    A socket's timeout does not cover the name lookup, which can hang far longer:
    a tracker container that stops vanishes from Docker's DNS, and on an internal
    network the lookup then waits for outside resolvers that never answer (10 s with
    the usual resolver options). A tracker whose name does not resolve in time is
    treated as one that does not connect: skipped, and the next one asked.
    """
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return [(host, port)]
    result: list[object] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            result.append(exc)
        done.set()

    # A daemon thread: a lookup that hangs is left behind, never waited for.
    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"looking up {host} took more than {timeout:g}s")
    answer = result[0]
    if isinstance(answer, OSError):
        raise answer
    addresses = list(dict.fromkeys(str(info[4][0]) for info in answer))  # in order, once each
    return [(address, port) for address in addresses]


class _StaleConnection(ConnectionError):
    """A pooled connection turned out closed before any byte of an answer came back.

    ``sent`` is false when sending failed, so the tracker cannot have run the request.
    """

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass
class _Attempt:
    """One tracker's try at a request: ``sent`` once it may have run there."""

    sent: bool = False


class _Connection:
    """One persistent TCP connection to a tracker, reading whole response lines."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)

    def is_stale(self) -> bool:
        """True if the tracker closed this idle connection (or it has unread bytes)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)  # EOF, a reset, or a stray line: unusable either way

    def request(self, line: bytes) -> bytes:
        """Send ``line`` and read one answer line.

        A reset or end of file before any byte of the answer raises
        :class:`_StaleConnection`; a timeout raises ``TimeoutError`` as it is, because
        the tracker may be working on the request and it must not be sent again here.
        """
        try:
            self.sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _StaleConnection(str(exc), sent=False) from exc
        buf = b""
        while not buf.endswith(b"\n"):
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError as exc:
                if not buf:
                    raise _StaleConnection(str(exc), sent=True) from exc
                raise
            if not chunk:
                if not buf:
                    raise _StaleConnection(
                        "tracker closed the connection without answering", sent=True
                    )
                raise ConnectionError("tracker closed the connection in the middle of an answer")
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
    host: str  # as configured: a name or an address
    port: int
    address: str | None = None  # the name's address this entry stands for (None: resolve)
    failed_at: float | None = None
    idle: list[_Connection] = field(default_factory=list)

    def __str__(self) -> str:
        if self.address is None or self.address == self.host:
            return f"{self.host}:{self.port}"
        return f"{self.host}:{self.port} ({self.address})"


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
        resolve_interval: seconds between lookups of the tracker names, each address
            of a name being a tracker (default 10; also after a tracker fails).
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
        resolve_interval: float = 10.0,
        socket_module=socket,
    ) -> None:
        self._configured = parse_trackers(trackers)
        self._trackers = [_Tracker(h, p) for h, p in self._configured]
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.dead_timeout = dead_timeout
        self.max_idle = max_idle
        self.resolve_interval = resolve_interval
        self._resolved_at = time.monotonic() - resolve_interval  # due at the first request
        self._resolving = False
        self._socket = socket_module
        self._lock = threading.Lock()

    @property
    def addresses(self) -> list[str]:
        return [f"{h}:{p}" for h, p in self._configured]

    def request(self, command: str, args: Args | None = None) -> dict[str, str]:
        """Send one command and return the decoded ``OK`` arguments.

        Raises the matching :class:`~django_mogilefs.exceptions.TrackerError` for
        an ``ERR`` answer, or :class:`TrackerUnavailableError` when no tracker answered.
        """
        with metrics.tracker_request(command):
            return self._request(command, args)

    def _request(self, command: str, args: Args | None) -> dict[str, str]:
        line = encode_request(command, args)
        errors = []
        lost_on: list[str] = []  # trackers that may have run it without answering
        for tracker in self._order():
            attempt = _Attempt()
            try:
                response = self._request_on(tracker, line, attempt)
            except (OSError, ProtocolError) as exc:
                self._mark_dead(tracker, exc)
                errors.append(f"{tracker}: {exc or type(exc).__name__}")
                if attempt.sent:
                    lost_on.append(str(tracker))
                continue
            self._mark_alive(tracker)
            try:
                return parse_response(response)
            except TrackerError as exc:
                if attempt.sent and str(tracker) not in lost_on:
                    lost_on.append(str(tracker))  # an idle connection lost it first
                if not lost_on:
                    raise
                return self._resolve(command, args or {}, exc, tracker, lost_on)
        raise TrackerUnavailableError(
            f"No MogileFS tracker answered {command!r} ({'; '.join(errors)})"
        )

    def _resolve(
        self,
        command: str,
        args: Args,
        exc: TrackerError,
        tracker: _Tracker,
        lost_on: list[str],
    ) -> dict[str, str]:
        """An ``ERR`` to a resent request: the lost attempt's result, or ``exc`` raised."""
        exc.after_lost_answer = True
        answer = lost_answers.resolve(self, command, args, exc)
        if answer is None:
            raise exc
        logger.info(
            "%s answered %s to %r resent after a lost answer from %s: the first attempt did it",
            tracker,
            exc.code,
            command,
            ", ".join(lost_on),
        )
        return answer

    def close(self) -> None:
        """Close every idle connection (in-flight ones close when they finish)."""
        with self._lock:
            for tracker in self._trackers:
                for conn in tracker.idle:
                    conn.close()
                tracker.idle.clear()

    def _maybe_refresh(self) -> None:
        """Start a lookup of the names in the background when one is due: every
        ``resolve_interval`` s, or 1 s after a tracker failed."""
        now = time.monotonic()
        failed = any(t.failed_at is not None for t in self._trackers)
        due = self.resolve_interval if not failed else min(self.resolve_interval, 1.0)
        with self._lock:
            if self._resolving or now - self._resolved_at < due:
                return
            self._resolving = True
        threading.Thread(target=self._refresh, name="tracker names", daemon=True).start()

    def _refresh(self) -> None:
        """Each address of a name is a tracker (one that stays keeps its state and idle
        connections; one that goes is dropped). A name that does not resolve keeps what
        it had: connecting will tell."""
        try:
            current = {(t.host, t.port, t.address): t for t in self._trackers}
            fresh: list[_Tracker] = []
            for host, port in self._configured:
                try:
                    addresses = [a for a, _ in resolve_all(host, port, self.connect_timeout)]
                except OSError:
                    fresh += [t for t in self._trackers if (t.host, t.port) == (host, port)]
                    continue
                for address in addresses:
                    known = current.pop((host, port, address), None)
                    if known is None:  # an entry not resolved yet stands for its first address
                        known = current.pop((host, port, None), None)
                        if known is not None:
                            known.address = address
                    fresh.append(known or _Tracker(host, port, address))
            with self._lock:
                old, self._trackers = self._trackers, fresh or self._trackers
            for tracker in (t for t in old if t not in self._trackers):
                for conn in tracker.idle:
                    conn.close()
                tracker.idle.clear()
        finally:
            with self._lock:
                self._resolved_at, self._resolving = time.monotonic(), False

    def _order(self) -> list[_Tracker]:
        """Live trackers first, starting at a random one; dead ones last, as a last resort."""
        self._maybe_refresh()
        now = time.monotonic()
        trackers = list(self._trackers)
        start = random.randrange(len(trackers))
        rotated = trackers[start:] + trackers[:start]
        live = [t for t in rotated if t.failed_at is None or now - t.failed_at >= self.dead_timeout]
        dead = [t for t in rotated if t not in live]
        return live + dead

    def _request_on(self, tracker: _Tracker, line: bytes, attempt: _Attempt) -> bytes:
        """Send on an idle connection (or a fresh one if it was dropped); read the answer.

        ``attempt.sent`` becomes true as soon as the tracker may have run the request.
        """
        conn = self._take_idle(tracker)
        if conn is not None:
            try:
                response = conn.request(line)
            except _StaleConnection as exc:
                # The tracker dropped this idle connection, almost always before the
                # request reached it: it is sent once more, on a fresh connection.
                attempt.sent = attempt.sent or exc.sent
                conn.close()
                logger.debug("Idle connection to %s was closed (%s); reconnecting", tracker, exc)
            except BaseException:
                attempt.sent = True
                conn.close()  # never reuse a socket that timed out or broke mid-answer
                raise
            else:
                self._give_back(tracker, conn)
                return response
        conn = self._connect(tracker)
        try:
            response = conn.request(line)
        except _StaleConnection as exc:
            attempt.sent = attempt.sent or exc.sent
            conn.close()
            raise
        except BaseException:
            attempt.sent = True
            conn.close()
            raise
        self._give_back(tracker, conn)
        return response

    def _connect(self, tracker: _Tracker) -> _Connection:
        if tracker.address is not None:
            address = (tracker.address, tracker.port)
        else:
            address = resolve(tracker.host, tracker.port, self.connect_timeout)
        sock = self._socket.create_connection(address, timeout=self.connect_timeout)
        return _Connection(sock, self.timeout)

    def _take_idle(self, tracker: _Tracker) -> _Connection | None:
        while True:
            with self._lock:
                conn = tracker.idle.pop() if tracker.idle else None
            if conn is None or not conn.is_stale():
                return conn
            conn.close()

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
