"""Background jobs: job_master, replicate, delete, reaper and fsck (the monitor is apart)."""

from __future__ import annotations

import hashlib
import logging
import queue
import random
import threading
import time
from typing import TYPE_CHECKING

from . import httpio
from .base import weighted_list
from .state import HASHLIB_NAMES, Checksum, Device, FileRow, QueueRow, State

if TYPE_CHECKING:
    from .server import FakeTracker

log = logging.getLogger("faketracker.workers")

# Replicate.pm's back-off after a failed attempt: 15 s, 60 s, 5 min, 30 min, 1 h, ... 24 h.
BACKOFF = (15, 60, 300, 1800, 3600, 7200, 14400, 28800, 86400)
TEMPFILE_MAX_AGE = 3600  # tempfiles older than this are reaped


class Worker(threading.Thread):
    """A job thread that runs :meth:`run_once` every ``interval`` s (or when woken)."""

    job = "worker"

    def __init__(self, tracker: FakeTracker, interval: float) -> None:
        super().__init__(name=f"faketracker-{self.job}", daemon=True)
        self.tracker = tracker
        self.interval = interval
        self.wake = threading.Event()
        self._stop_event = threading.Event()

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()

    def stop(self) -> None:
        self._stop_event.set()
        self.wake.set()

    def run(self) -> None:
        while not self.stopped:
            try:
                self.run_once()
            except Exception:
                log.exception("%s round failed", self.job)
            self.wake.wait(self.interval)
            self.wake.clear()

    def run_once(self) -> None:
        raise NotImplementedError


class QueueWorker(Worker):
    """A worker fed fids by the job master through a queue."""

    def __init__(self, tracker: FakeTracker, work: queue.Queue[int | None]) -> None:
        super().__init__(tracker, 0)
        self.work = work

    def stop(self) -> None:
        super().stop()
        self.work.put(None)

    def run(self) -> None:
        while not self.stopped:
            fid = self.work.get()
            if fid is None:
                break
            try:
                self.process(fid)
            except Exception:
                log.exception("%s of fid %s failed", self.job, fid)
            finally:
                self.done(fid)

    def process(self, fid: int) -> None:
        raise NotImplementedError

    def done(self, fid: int) -> None:
        with self.tracker.state.lock:
            self.tracker.state.release(self.job, fid)


def backoff(row: QueueRow) -> None:
    delay = BACKOFF[min(row.failcount, len(BACKOFF) - 1)] * random.uniform(0.8, 1.2)
    row.failcount += 1
    row.nexttry = time.time() + delay


class JobMaster(Worker):
    """Every ``replicate_poll`` s, hands due queue rows to the replicate and delete workers."""

    job = "job_master"

    def __init__(self, tracker: FakeTracker) -> None:
        super().__init__(tracker, tracker.config.replicate_poll)

    def run_once(self) -> None:
        state, tracker = self.tracker.state, self.tracker
        now = time.time()
        with state.lock:
            for job, rows, work in (
                ("replicate", state.replicate_queue, tracker.replicate_work),
                ("delete", state.delete_queue, tracker.delete_work),
            ):
                due = [
                    fid
                    for fid, row in sorted(rows.items())
                    if row.nexttry <= now and state.claim(job, fid, tracker.owner)
                ]
                for fid in due:
                    work.put(fid)
                state.stats[f"work_sent_to_{job}"] += len(due)
                state.stats[f"work_queue_for_{job}"] = work.qsize()


class Replicator(QueueWorker):
    """Copies a file to more devices until its class's replication policy is happy."""

    job = "replicate"

    def process(self, fid: int) -> None:
        failed: set[int] = set()
        state = self.tracker.state
        while not self.stopped:
            with state.lock:
                row = state.files.get(fid)
                qrow = state.replicate_queue.get(fid)
                if row is None:
                    state.replicate_queue.pop(fid, None)
                    return
                dest = replicate_to(state, row, failed, random.Random())
                if dest == "happy":
                    state.replicate_queue.pop(fid, None)
                    return
                if dest is None:
                    self.tracker.note_error(
                        "policy_no_suggestions: replication policy ran out of suggestions "
                        f"for us replicating fid {fid}"
                    )
                    if qrow is not None:
                        backoff(qrow)
                    return
                sources = [
                    state.device_url(d, fid)
                    for d in row.devids
                    if d in state.devices and state.should_read_from(state.devices[d])
                ]
                target = state.device_url(dest.devid, fid)
                # Replicate.pm: a file's stored checksum is checked on every GET; a
                # class with a hashtype gets one computed for a file that has none.
                stored = state.checksums.get(fid)
                dom = state.domains.get(row.dmid)
                cls = dom.class_by_id(row.classid) if dom else None
                hashtype = stored.hashtype if stored else (cls.hashtype if cls else None)
            copied = self._copy(sources, target, hashtype, stored.digest if stored else None)
            if isinstance(copied, bytes):  # the digest of what was copied
                with state.lock:
                    if fid in state.files and fid not in state.checksums:
                        state.checksums[fid] = Checksum(fid, hashtype, copied)
                copied = True
            with state.lock:  # rows are looked up again: another tracker may have run
                if copied is None:  # no readable source: retry later
                    qrow = state.replicate_queue.get(fid)
                    if qrow is not None:
                        backoff(qrow)
                    return
                if not copied:
                    failed.add(dest.devid)
                    continue
                current = state.files.get(fid)
                if current is None:  # deleted meanwhile: remove the fresh copy too
                    state.enqueue_delete(fid, [dest.devid])
                    return
                if dest.devid not in current.devids:
                    current.devids = sorted([*current.devids, dest.devid])

    def _copy(
        self, sources: list[str], target: str, hashtype: str | None, expected: bytes | None
    ) -> bytes | bool | None:
        """GET from a source, PUT to the target.

        None: no source gave the file (unreadable, or its bytes do not match the stored
        checksum); False: the PUT failed; True, or the copy's digest when ``hashtype``.
        """
        timeout = self.tracker.config.http_timeout
        for url in sources:
            try:
                got = httpio.request("GET", url, timeout=timeout)
            except OSError as exc:
                self.tracker.note_error(f"replication read of {url} failed: {exc}")
                continue
            if not got.ok:
                continue
            digest = hashlib.new(HASHLIB_NAMES[hashtype], got.body).digest() if hashtype else None
            if expected is not None and digest != expected:
                self.tracker.note_error(
                    f"checksum mismatch on GET: expected: {expected.hex()} "
                    f"actual: {digest.hex() if digest else ''} ({url})"
                )
                continue
            try:
                put = httpio.request("PUT", target, got.body, timeout=timeout)
            except OSError as exc:
                self.tracker.note_error(f"replication write to {target} failed: {exc}")
                return False
            return (digest or True) if put.ok else False
        return None


def _policy_min(policy: str, mindevcount: int) -> tuple[str, int]:
    name, _, rest = policy.partition("(")
    explicit = rest.rstrip(") ").strip()
    return name.strip(), int(explicit) if explicit.isdigit() and int(explicit) else mindevcount


def replicate_to(
    state: State, row: FileRow, failed: set[int], rng: random.Random
) -> Device | str | None:
    """ReplicationPolicy::MultipleHosts / MultipleDevices ->replicate_to.

    Returns ``"happy"`` when no copy is needed, a destination device, or ``None`` when the
    policy has no suggestion (TEMP_NO_ANSWER).
    """
    dom = state.domains.get(row.dmid)
    cls = dom.class_by_id(row.classid) if dom else None
    policy, need = _policy_min(
        cls.policy_string if cls else "MultipleHosts()", cls.mindevcount if cls else 2
    )
    on_devs = [state.devices[d] for d in row.devids if d in state.devices]
    if need == 1 and on_devs:
        return "happy"
    devices = list(state.devices.values())
    total_disks = sum(d.status in ("alive", "readonly", "down", "drain") for d in devices)
    if len(on_devs) >= 2 and len(on_devs) == total_disks:
        return "happy"
    on_host = {d.hostid for d in on_devs}
    skip_host: set[int] = set()
    if policy == "MultipleDevices":
        if len(on_devs) >= need:
            return "happy"
    else:
        total_hosts = len({d.hostid for d in devices if d.status == "alive"})
        if len(on_host) >= need:
            return "happy"
        if len(on_host) >= total_hosts and len(on_devs) >= need:
            return "happy"
        if len(on_host) < total_hosts:
            skip_host = on_host
    on_ids = {d.devid for d in on_devs}
    dests: list[Device] = weighted_list(
        rng,
        [
            (d, 100 * d.percent_free)
            for d in devices
            if d.devid not in on_ids and d.devid not in failed and state.should_get_new_files(d)
        ],
    )
    ideal = [d for d in dests if d.hostid not in skip_host]
    desperate = [d for d in dests if d.hostid in skip_host]
    return (ideal or desperate or [None])[0]


class Deleter(QueueWorker):
    """Removes the copies of deleted files with HTTP DELETE (204, or 404 if already gone)."""

    job = "delete"

    def process(self, fid: int) -> None:
        state = self.tracker.state
        with state.lock:
            row = state.delete_queue.get(fid)
            if row is None:
                return
            targets = [
                (d, state.device_url(d, fid))
                for d in row.devids
                if d in state.devices and state.devices[d].status != "dead"
            ]
            row.devids &= {d for d, _ in targets}
        removed = set()
        for devid, url in targets:
            try:
                res = httpio.request("DELETE", url, timeout=self.tracker.config.http_timeout)
            except OSError as exc:
                self.tracker.note_error(f"delete of {url} failed: {exc}")
                continue
            if res.ok or res.status == 404:
                removed.add(devid)
        with state.lock:  # looked up again: another tracker may have changed the row
            row = state.delete_queue.get(fid)
            if row is None:
                return
            row.devids -= removed
            if not row.devids:
                state.delete_queue.pop(fid, None)
            else:
                backoff(row)


class Reaper(Worker):
    """Forgets copies on dead devices (and re-replicates those files); reaps old tempfiles."""

    job = "reaper"

    def __init__(self, tracker: FakeTracker) -> None:
        super().__init__(tracker, tracker.config.replicate_poll)

    def run_once(self) -> None:
        state = self.tracker.state
        with state.lock:
            dead = {d.devid for d in state.devices.values() if d.status == "dead"}
            for row in state.files.values():
                if dead & set(row.devids):
                    row.devids = [d for d in row.devids if d not in dead]
                    state.enqueue_replication(row.fid)
            too_old = time.time() - TEMPFILE_MAX_AGE
            for temp in [t for t in state.tempfiles.values() if t.createtime < too_old]:
                del state.tempfiles[temp.fid]
                state.enqueue_delete(temp.fid, [int(d) for d in temp.devids.split(",") if d])


class Fsck(Worker):
    """A minimal fsck: when started, HEAD-checks every copy and records missing ones."""

    job = "fsck"

    def __init__(self, tracker: FakeTracker) -> None:
        super().__init__(tracker, tracker.config.replicate_poll)

    def run_once(self) -> None:
        state = self.tracker.state
        with state.lock:
            if not state.settings.get("fsck_host"):
                return
            if not state.claim("fsck", 0, self.tracker.owner):
                return  # another tracker's fsck is running
            start = int(state.settings.get("fsck_highest_fid_checked") or 0)
            checks = [
                (row.fid, d, state.device_url(d, row.fid), row.length)
                for row in state.files.values()
                if row.fid > start
                for d in row.devids
                if d in state.devices
            ]
        missing = 0
        for _fid, _devid, url, length in checks:
            if httpio.head_size(url, self.tracker.config.http_timeout) != length:
                missing += 1
        with state.lock:
            top = max((fid for fid, *_ in checks), default=start)
            state.settings.update(
                {
                    "fsck_highest_fid_checked": str(top),
                    "fsck_stop_time": str(int(time.time())),
                }
            )
            if missing:
                old = int(state.settings.get("fsck_sum_evcount_MISS") or 0)
                state.settings["fsck_sum_evcount_MISS"] = str(old + missing)
            state.settings.pop("fsck_host", None)
            state.release("fsck", 0)
