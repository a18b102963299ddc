"""Prometheus counters of what this process did: tracker requests, path cache, serving, uploads.

They are kept per process by ``prometheus_client``; under gunicorn set
``PROMETHEUS_MULTIPROC_DIR`` (in gunicorn's config file) so that a scrape adds up
every worker. What the tracker says of the cluster is in :mod:`.cluster_metrics`.
Without the ``metrics`` extra (``prometheus-client``) they count nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from .exceptions import MogileFSError, TrackerError, TrackerUnavailableError


class _Uncounted:
    """Stands for a counter or histogram when prometheus-client is not installed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def labels(self, *values: str) -> _Uncounted:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


try:
    from prometheus_client import Counter, Histogram
except ModuleNotFoundError:  # the metrics extra is not installed
    Counter = Histogram = _Uncounted  # type: ignore[misc,assignment]

TRACKER_SECONDS = Histogram(
    "mogilefs_tracker_request_seconds",
    "Tracker round trips by command (an ERR answer is a round trip too).",
    ["command"],
)
TRACKER_ERRORS = Counter(
    "mogilefs_tracker_errors_total",
    "Tracker requests that failed, by command and error (ERR code, or unavailable).",
    ["command", "error"],
)
PATH_CACHE = Counter(
    "mogilefs_path_cache_total", "Path cache lookups of the storage backend.", ["result"]
)
SERVE_RESPONSES = Counter(
    "mogilefs_serve_responses_total",
    "Answers of the serve view by kind: reproxy, stream, 404, 503.",
    ["kind"],
)
UPLOADS = Counter(
    "mogilefs_uploads_total",
    "Stores through the storage backend by outcome.",
    ["outcome"],
)


@contextlib.contextmanager
def tracker_request(command: str) -> Iterator[None]:
    """Time one tracker request and count its failure, if it fails."""
    started = time.perf_counter()
    try:
        yield
    except TrackerUnavailableError:
        TRACKER_ERRORS.labels(command, "unavailable").inc()
        raise
    except TrackerError as exc:
        TRACKER_ERRORS.labels(command, exc.code).inc()
        TRACKER_SECONDS.labels(command).observe(time.perf_counter() - started)
        raise
    except MogileFSError as exc:
        TRACKER_ERRORS.labels(command, type(exc).__name__).inc()
        raise
    TRACKER_SECONDS.labels(command).observe(time.perf_counter() - started)


def upload_outcome(exc: BaseException | None) -> str:
    """The ``outcome`` label of a store: stored, or what stopped it."""
    if exc is None:
        return "stored"
    if isinstance(exc, TrackerError):
        return exc.code
    if isinstance(exc, TrackerUnavailableError):
        return "tracker_unavailable"
    return "storage_node_error" if isinstance(exc, MogileFSError) else "error"
