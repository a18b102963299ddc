"""Prometheus metrics: what this process did, and what the tracker says of the cluster.

Counters are kept per process by ``prometheus_client``; under gunicorn set
``PROMETHEUS_MULTIPROC_DIR`` (app/gunicorn.conf.py does) so that a scrape adds up
every worker. Device figures are asked of the tracker at scrape time, at most once
per ``cache_seconds`` per process, so scraping never floods it. MogileFS 2.73 has no
command that counts files per class, so there is no such metric.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .cluster import DEVICE_STATES, DeviceInfo, HostInfo
from .exceptions import MogileFSError, TrackerError, TrackerUnavailableError

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
# The observed states the tracker's monitor reports (get_devices observed_state).
OBSERVED_STATES = ("writeable", "readable", "unreachable")


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


Snapshot = tuple[list[HostInfo], list[DeviceInfo]]


class ClusterCollector(Collector):
    """Device space and states from ``get_hosts``/``get_devices``, cached for a while."""

    def __init__(self, fetch: Callable[[], Snapshot], cache_seconds: float = 15.0) -> None:
        self.fetch = fetch
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._snapshot: Snapshot | None = None
        self._ok = False

    def snapshot(self) -> tuple[Snapshot | None, bool]:
        """The cached answers (refreshed when old; one refresh at a time) and if it worked."""
        with self._lock:
            if time.monotonic() - self._at >= self.cache_seconds:
                try:
                    self._snapshot, self._ok = self.fetch(), True
                except MogileFSError:
                    self._ok = False  # the last answers, if any, are shown again
                self._at = time.monotonic()
            return self._snapshot, self._ok

    def collect(self) -> Iterator[Metric]:
        snapshot, ok = self.snapshot()
        up = GaugeMetricFamily("mogilefs_tracker_up", "Whether the last tracker query worked.")
        up.add_metric([], 1 if ok else 0)
        yield up
        if snapshot is None:
            return
        hosts, devices = snapshot
        names = {h.hostid: h.name for h in hosts}
        labels = ["devid", "host"]
        free = GaugeMetricFamily("mogilefs_device_free_bytes", "Free space.", labels=labels)
        total = GaugeMetricFamily("mogilefs_device_total_bytes", "Device size.", labels=labels)
        observed = GaugeMetricFamily(
            "mogilefs_device_observed_state",
            "1 for the state the tracker's monitor observes the device in.",
            labels=[*labels, "state"],
        )
        status = GaugeMetricFamily(
            "mogilefs_device_status",
            "1 for the device's administrative status.",
            labels=[*labels, "status"],
        )
        for dev in devices:
            ids = [str(dev.devid), names.get(dev.hostid, str(dev.hostid))]
            if dev.mb_free is not None:
                free.add_metric(ids, dev.mb_free * 1024 * 1024)
            if dev.mb_total is not None:
                total.add_metric(ids, dev.mb_total * 1024 * 1024)
            for state in OBSERVED_STATES:
                observed.add_metric([*ids, state], 1 if dev.observed_state == state else 0)
            for state in DEVICE_STATES:
                status.add_metric([*ids, state], 1 if dev.status == state else 0)
        yield from (free, total, observed, status)


def cluster_registry(collector: ClusterCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
