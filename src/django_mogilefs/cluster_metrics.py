"""Prometheus gauges of the cluster, from the tracker's ``get_hosts`` and ``get_devices``.

Asked at scrape time, at most once per ``cache_seconds`` per process (one refresh at
a time), so scraping never floods the tracker. MogileFS 2.73 has no command that
counts files per class, so there is no such metric.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .cluster import DEVICE_STATES, DeviceInfo, HostInfo
from .exceptions import MogileFSError

# The observed states the tracker's monitor reports (get_devices observed_state).
OBSERVED_STATES = ("writeable", "readable", "unreachable")

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
