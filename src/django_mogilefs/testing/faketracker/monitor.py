"""The monitor job: device usage, reachability and writeability (MogileFS::Worker::Monitor)."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
from django_mogilefs.exceptions import StorageNodeError

from .protocol import perl_num
from .workers import Worker

if TYPE_CHECKING:
    from .server import FakeTracker

log = logging.getLogger("faketracker.monitor")
_USAGE_LINE = re.compile(r"(\w+)\s*:\s*(.+)", re.ASCII)
SLOW_FAILURE = 0.5  # s: a usage GET failing later than this means the host is gone
UPDATE_DB_EVERY = 15.0  # Monitor.pm: device sizes reach the database this often


@dataclass
class _Probe:
    devid: int
    hostid: int
    hostip: str
    port: int | None
    get_port: int | None
    can_delete_from: bool
    test_write_due: bool


class Monitor(Worker):
    """Each round: GET ``/devN/usage`` for every device on a live host, then (every
    ``test_write_interval`` s per device) PUT and GET back ``/devN/test-write/test-write-<n>``.

    A usage GET that fails fast (< 0.5 s: refused, an HTTP error) marks the device
    ``unreachable``. One that fails slowly (a timeout: the host is gone, packets dropped)
    marks the *host* unreachable and skips its other devices for the round; the devices
    keep their last observed state in ``get_devices``, but the tracker neither offers
    nor reads them until the host answers again (Monitor.pm ``on_usage_response``,
    Device.pm ``host_ok``). A test write that reads back marks a device ``writeable``,
    anything else ``readable``.
    """

    job = "monitor"

    def __init__(self, tracker: FakeTracker) -> None:
        super().__init__(tracker, tracker.config.monitor_interval)
        self._cond = threading.Condition()
        self._completed = 0
        self._running = False
        self._rng = random.Random()
        self._stored: dict[int, tuple[tuple[int, int] | None, float]] = {}

    # ------------------------------------------------------------------ waiting

    def wait_for_round(self, timeout: float = 30.0) -> None:
        """Block until a round that started after this call has finished."""
        if not self.is_alive():
            return
        with self._cond:
            target = self._completed + (2 if self._running else 1)
            self.wake.set()
            self._cond.wait_for(lambda: self._completed >= target or self.stopped, timeout)

    def wait_first_round(self, timeout: float = 30.0) -> None:
        """create_open waits until the monitor has run at least once."""
        if not self.is_alive():
            return
        with self._cond:
            self._cond.wait_for(lambda: self._completed >= 1 or self.stopped, timeout)

    def run_once(self) -> None:
        with self._cond:
            self._running = True
            self.wake.clear()
        try:
            self.check_all()
        finally:
            with self._cond:
                self._running = False
                self._completed += 1
                self._cond.notify_all()

    def stop(self) -> None:
        super().stop()
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ checking

    def _probes(self) -> list[_Probe]:
        now = time.time()
        interval = self.tracker.config.test_write_interval
        probes = []
        for dev in self.tracker.view().devices.values():
            host = dev.host
            if host is None or host.status not in ("alive", "readonly"):
                continue
            if dev.status in ("down", "dead"):
                continue
            last = dev.seen.last_test_write
            probes.append(
                _Probe(
                    dev.devid,
                    host.hostid,
                    host.hostip,
                    host.http_port,
                    host.http_get_port,
                    dev.status in ("alive", "drain"),
                    not last or last + interval <= now,
                )
            )
        return probes

    def check_all(self) -> None:
        skip_hosts: set[int] = set()
        for probe in self._probes():
            if probe.hostid in skip_hosts or self.stopped:
                continue
            if not self._check(probe):
                skip_hosts.add(probe.hostid)

    def _set(self, devid: int, **changes: object) -> None:
        self.tracker.observations.update(devid, **changes)

    def _check(self, probe: _Probe) -> bool:
        """Check one device; ``False`` if its whole host timed out."""
        base = f"http://{probe.hostip}:{probe.port}/dev{probe.devid}"
        started = time.monotonic()
        error = ""
        try:
            res: requests.Response | None = self.tracker.http.request("GET", f"{base}/usage")
        except StorageNodeError as exc:
            res = None
            error = str(exc)
        if res is None or res.status_code != 200:
            if time.monotonic() - started >= SLOW_FAILURE:
                self._set_host(probe.hostid, "unreachable")
                return False
            self._set(probe.devid, observed="unreachable")
            self.tracker.note_error(
                f"Port {probe.get_port or probe.port} not listening on {probe.hostip} "
                f"({base}/usage)?  Error was: {error if res is None else res.status_code}"
            )
            return True
        self._set_host(probe.hostid, "reachable")
        stats = dict(
            m.groups()
            for m in map(_USAGE_LINE.fullmatch, res.content.decode("latin-1").splitlines())
            if m
        )
        used, total = perl_num(stats.get("used")), perl_num(stats.get("total"))
        if not (used and total):
            self.tracker.note_error(
                f"dev{probe.devid} reports used = {stats.get('used')}, "
                f"total = {stats.get('total')}, error?"
            )
            return True
        mb_total, mb_used = int(total / 1024), int(used / 1024)
        self._set(probe.devid, mb_total=mb_total, mb_used=mb_used)
        self._store_usage(probe.devid, mb_total, mb_used)
        if probe.test_write_due:
            self._set(
                probe.devid,
                last_test_write=time.time(),
                observed=self._test_write(probe, base) if probe.can_delete_from else "readable",
            )
        return True

    def _test_write(self, probe: _Probe, base: str) -> str:
        num = self._rng.randrange(100)
        content = f"time={int(time.time())} rand={num}".encode()
        http = self.tracker.http
        get_base = f"http://{probe.hostip}:{probe.get_port or probe.port}/dev{probe.devid}"
        try:
            http.put(f"{base}/test-write/test-write-{num}", content, len(content))
            got = http.request("GET", f"{get_base}/test-write/test-write-{num}")
            if got.status_code == 200 and got.content == content:
                return "writeable"
        except StorageNodeError as exc:
            self.tracker.note_error(f"test write to dev{probe.devid} failed: {exc}")
        return "readable"

    def _set_host(self, hostid: int, observed: str) -> None:
        self.tracker.observations.set_host(hostid, observed)

    def _store_usage(self, devid: int, mb_total: int, mb_used: int) -> None:
        """Write the device's size to the database at most every UPDATE_DB_EVERY s."""
        now = time.monotonic()
        last, when = self._stored.get(devid, (None, 0.0))
        if last == (mb_total, mb_used) and now - when < UPDATE_DB_EVERY:
            return
        self.tracker.store.update_device_usage(devid, mb_total, mb_used)
        self._stored[devid] = ((mb_total, mb_used), now)
