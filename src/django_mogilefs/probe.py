"""Probe storage nodes the way the tracker's monitor does: ``GET /dev<N>/usage``.

MogileFS 2.73's monitor fetches every device's usage file every few seconds and
judges a failure by how long it took:

* a failure within 0.5 s (port refused, an HTTP error) marks the *device*
  unreachable, which ``get_devices`` shows as ``observed_state=unreachable``;
* a slower failure (no answer until its timeout) marks the *host* unreachable:
  the tracker then skips the host in ``create_open`` and ``get_paths``, yet
  ``get_devices`` keeps the last observed state (often ``writeable``) and
  ``get_hosts`` has no observed state at all.

So only a probe of one's own tells the second case apart. Each probe here has a
hard deadline (connecting, sending and reading all count), which a ``requests``
timeout does not give: it applies to each socket operation, not to the whole.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

# The monitor's line between "the device failed" and "the host is gone" (Monitor.pm).
SLOW_FAILURE = 0.5
MAX_RESPONSE = 64 * 1024  # a usage file is about 150 bytes
_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})")
_USAGE_LINE = re.compile(r"^(\w+)\s*:\s*(.+)$")


class Verdict(StrEnum):
    """What a probe found, in the tracker's terms."""

    ANSWERS = "answers"  # HTTP 200 with ``used`` and ``total``
    BAD_USAGE = "bad_usage"  # HTTP 200 without them: the tracker logs it and changes nothing
    FAILS = "fails"  # failed within 0.5 s: the tracker marks the device unreachable
    NO_ANSWER = "no_answer"  # failed after 0.5 s or timed out: the host is skipped
    NOT_PROBED = "not_probed"  # the probes' total time budget ran out first


@dataclass(frozen=True)
class Probe:
    url: str
    verdict: Verdict
    seconds: float
    detail: str  # what happened, for people: "connection refused", "HTTP 404", ...

    @property
    def answers(self) -> bool:
        return self.verdict is Verdict.ANSWERS


def probe_usage(url: str, timeout: float = 1.0) -> Probe:
    """GET ``url`` (a device's usage file) and judge the answer within ``timeout`` seconds."""
    started = time.monotonic()
    try:
        parts = urlsplit(url)
        address = (parts.hostname or "", parts.port or 80)
        request = (
            f"GET {parts.path or '/'} HTTP/1.0\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(request)
            raw = _read_response(sock, started + timeout)
    except TimeoutError:
        seconds = time.monotonic() - started
        return Probe(url, Verdict.NO_ANSWER, seconds, f"no answer within {timeout:g} s")
    except OSError as exc:
        return _failed(url, started, exc.strerror or str(exc) or type(exc).__name__)
    except ValueError as exc:  # a port that is not a number, a host name IDNA rejects
        return _failed(url, started, f"bad URL: {exc}")
    return _judge(url, started, raw)


def probe_all(
    urls: Iterable[str], timeout: float = 1.0, *, budget: float | None = None, workers: int = 32
) -> dict[str, Probe]:
    """Probe every URL in parallel; return their probes within ``budget`` seconds.

    ``budget`` defaults to twice ``timeout``. A URL whose probe has not finished
    by then (more URLs than ``workers``, or a name that takes long to resolve)
    gets a ``NOT_PROBED`` probe; its thread ends by itself at its own deadline.
    """
    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}
    budget = 2 * timeout if budget is None else budget
    pool = ThreadPoolExecutor(min(workers, len(unique)), thread_name_prefix="mogilefs-probe")
    try:
        futures = {url: pool.submit(probe_usage, url, timeout) for url in unique}
        wait(futures.values(), timeout=budget)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    late = f"not probed within {budget:g} s"
    return {
        url: future.result()
        if future.done() and not future.cancelled()
        else Probe(url, Verdict.NOT_PROBED, budget, late)
        for url, future in futures.items()
    }


def _read_response(sock: socket.socket, deadline: float) -> bytes:
    """The response until the server closes, it is complete, or ``deadline`` passes."""
    data = b""
    while len(data) < MAX_RESPONSE:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(MAX_RESPONSE - len(data))
        if not chunk:
            break
        data += chunk
        if _complete(data):
            break
    return data


def _complete(data: bytes) -> bool:
    """Whether the headers are in and the body has its ``Content-Length``."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    return length is not None and len(body) >= int(length.group(1))


def _failed(url: str, started: float, detail: str) -> Probe:
    seconds = time.monotonic() - started
    verdict = Verdict.FAILS if seconds < SLOW_FAILURE else Verdict.NO_ANSWER
    return Probe(url, verdict, seconds, detail)


def _judge(url: str, started: float, raw: bytes) -> Probe:
    status = _STATUS_LINE.match(raw)
    if status is None:
        return _failed(url, started, "no HTTP answer" if not raw else "not an HTTP answer")
    if status.group(1) != b"200":
        return _failed(url, started, f"HTTP {status.group(1).decode()}")
    seconds = time.monotonic() - started
    _, _, body = raw.partition(b"\r\n\r\n")
    fields = {}
    for line in body.decode("utf-8", "replace").splitlines():
        match = _USAGE_LINE.match(line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    # The monitor needs both to be true in Perl's sense: present, not empty, not "0".
    if fields.get("used", "0") in ("", "0") or fields.get("total", "0") in ("", "0"):
        return Probe(url, Verdict.BAD_USAGE, seconds, "the usage file has no used and total")
    return Probe(url, Verdict.ANSWERS, seconds, f"HTTP 200 in {seconds * 1000:.0f} ms")
