"""Background jobs: job_master, replicate (and rebalance), delete, reaper and fsck.

Each follows its MogileFS::Worker: the job master grabs due queue rows from the database
(claiming them for 1000 s, as grab_queue_chunk does) and hands them to this tracker's
workers; the workers do the HTTP and write back. Several trackers on one database share
the work this way and never take the same row twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import random
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django_mogilefs.exceptions import StorageNodeError

from . import rebalance
from .httpfile import head_size
from .observe import ClusterView, DeviceView
from .policy import replicate_to
from .store import END_OF_TIME, HASHLIB_NAMES, REBAL_QUEUE, Checksum, QueueRow

if TYPE_CHECKING:
    from .server import FakeTracker

log = logging.getLogger("faketracker.workers")

# Replicate.pm's back-off after a failed attempt: 15 s, 60 s, 5 min, 30 min, 1 h, ... 24 h.
BACKOFF = (15, 60, 300, 1800, 3600, 7200, 14400, 28800)
TEMPFILE_MAX_AGE = 3600  # Delete.pm: tempfiles older than this are reaped
REAP_INTERVAL = 5.0  # Reaper.pm
REAP_LIMIT = 1000  # queue_rate_for_reaper's default


@dataclass
class Todo:
    """A grabbed queue row on its way to a worker."""

    kind: str  # replicate / rebalance / delete
    row: QueueRow
    grabbed: float = field(default_factory=time.monotonic)


class Worker(threading.Thread):
    """A job thread that runs :meth:`run_once` every ``interval`` s (or when woken)."""

    job = "worker"

    def __init__(self, tracker: FakeTracker, interval: float) -> None:
        super().__init__(name=f"faketracker-{self.job}", daemon=True)
        self.tracker = tracker
        self.store = tracker.store
        self.interval = interval
        self.wake = threading.Event()
        self._stop_event = threading.Event()

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()

    @property
    def owner(self) -> str:
        """Who holds this thread's named locks."""
        return f"{self.tracker.owner}:{threading.get_ident()}"

    def stop(self) -> None:
        self._stop_event.set()
        self.wake.set()

    def run(self) -> None:
        try:
            while not self.stopped:
                try:
                    self.run_once()
                except Exception as exc:
                    log.exception("%s round failed", self.job)
                    self.tracker.note_error(f"{self.job}: {exc}")
                self.wake.wait(self.interval)
                self.wake.clear()
        finally:
            self.store.db.release_thread()

    def run_once(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[bool]:
        """A named database lock, taken without waiting: yields whether it was taken."""
        taken = self.store.db.get_lock(name, self.owner)
        try:
            yield taken
        finally:
            if taken:
                with contextlib.suppress(Exception):
                    self.store.db.release_lock(name, self.owner)


class QueueWorker(Worker):
    """A worker fed :class:`Todo` rows by the job master through a queue."""

    def __init__(self, tracker: FakeTracker, work: queue.Queue[Todo | None]) -> None:
        super().__init__(tracker, 0)
        self.work = work

    def stop(self) -> None:
        super().stop()
        self.work.put(None)

    idle_interval: float | None = None  # s between idle() calls while no work comes

    def run(self) -> None:
        try:
            while not self.stopped:
                try:
                    todo = self.work.get(timeout=self.idle_interval)
                except queue.Empty:
                    self._idle()
                    continue
                if todo is None:
                    break
                try:
                    self.process(todo)
                except Exception as exc:
                    log.exception("%s of fid %s failed", todo.kind, todo.row.fid)
                    self.tracker.note_error(f"{todo.kind} of fid {todo.row.fid} failed: {exc}")
                finally:
                    self.tracker.done(todo)
        finally:
            self.store.db.release_thread()

    def process(self, todo: Todo) -> None:
        raise NotImplementedError

    def _idle(self) -> None:
        try:
            self.idle()
        except Exception as exc:
            log.exception("%s idle round failed", self.job)
            self.tracker.note_error(f"{self.job}: {exc}")

    def idle(self) -> None:
        """What the worker does between todos (nothing by default)."""


def backoff_seconds(failcount: int) -> int:
    base = BACKOFF[failcount] if failcount < len(BACKOFF) else 86400
    return int(base * random.uniform(0.8, 1.2))


class JobMaster(Worker):
    """Every ``replicate_poll`` s (at once again while there is work): grab due rows of
    the replicate, delete and rebalance queues; the rebalance host also injects the next
    rebalance batch (JobMaster.pm)."""

    job = "job_master"
    BATCH = 100
    REFILL = 0.05  # s between looks at a work queue that still has a batch to get through

    def __init__(self, tracker: FakeTracker) -> None:
        super().__init__(tracker, tracker.config.replicate_poll)

    def run_once(self) -> None:
        """Rounds while a queue has work: at once after a grab, soon after a round that
        found the workers still busy. Waiting a whole poll then would cap each queue at a
        batch a poll (100 files a second), however fast the workers get through it."""
        while not self.stopped:
            grabbed, busy = self._round()
            if not (grabbed or busy):
                return
            if not grabbed:
                self._stop_event.wait(self.REFILL)

    def _round(self) -> tuple[bool, bool]:
        """(whether rows were grabbed, whether a work queue was too full to add to)."""
        tracker = self.tracker
        rebalance.inject(tracker)
        active = busy = False
        for kind, table, work, type_ in (
            ("replicate", "file_to_replicate", tracker.replicate_work, None),
            ("rebalance", "file_to_queue", tracker.replicate_work, REBAL_QUEUE),
            ("delete", "file_to_delete2", tracker.delete_work, None),
        ):
            if work.qsize() >= self.BATCH * 0.7:
                busy = True
                continue
            rows = self.store.grab(table, self.BATCH, type_)
            for row in rows:
                tracker.hand_out(Todo(kind, row), work)
            tracker.count(f"work_sent_to_{kind}", len(rows))
            active = active or bool(rows)
        return active, busy


# ---------------------------------------------------------------------- replication


@dataclass
class Outcome:
    """replicate()'s answer: ``ok`` (1 / "lost_race" / "nofid" / "would_worsen" are true
    in Perl) or an error code."""

    status: object = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.status)


class Replicator(QueueWorker):
    """Copies a file until its class's policy is happy; also runs rebalance moves."""

    job = "replicate"

    def process(self, todo: Todo) -> None:
        wait = self.tracker.config.replicate_min_delay - (time.monotonic() - todo.grabbed)
        if wait > 0:
            time.sleep(wait)
        if todo.kind == "rebalance":
            target = [int(d) for d in (todo.row.arg or "").split(",") if d.isdigit()]
            if todo.row.devid:
                self.rebalance_devfid(todo.row.fid, int(todo.row.devid), target)
            self.store.dequeue("file_to_queue", todo.row.fid, REBAL_QUEUE)
            return
        self._from_queue(todo.row)

    def _from_queue(self, row: QueueRow) -> None:
        """replicate_using_torepl_table."""
        fid = row.fid
        with self.locked(f"mgfs:fid:{fid}:replicate") as taken:
            if not taken:
                return  # another worker has it; the row comes back after its claim
            outcome = self.replicate(fid, fromdevid=row.fromdevid)
        if outcome.ok:
            self.store.dequeue("file_to_replicate", fid)
            return
        if outcome.error == "no_source":
            self.store.reschedule("file_to_replicate", fid, at=END_OF_TIME)
            return
        failcount = row.failcount
        if outcome.error == "too_happy":
            view = self.tracker.view()
            devs = [view.devices[d] for d in self.store.devids(fid) if d in view.devices]
            random.shuffle(devs)
            dev = next((d for d in devs if d.can_delete_from and d.should_read_from), None)
            if dev is not None and self.rebalance_devfid(fid, dev.devid):
                failcount = 0
        self.store.reschedule("file_to_replicate", fid, backoff_seconds(failcount))

    def rebalance_devfid(self, fid: int, devid: int, target: Collection[int] = ()) -> bool:
        """Replicate.pm rebalance_devfid: copy ``fid`` away from ``devid`` (onto one of
        ``target``, if given), then delete the copy on ``devid``. True if it was deleted."""
        with self.locked(f"mgfs:fid:{fid}:replicate") as taken:
            if not taken:
                return False
            if self.store.file_by_fid(fid) is None:
                return True
            outcome = self.replicate(fid, mask=(devid,), target=target or None)
            if not (outcome.ok or outcome.error == "too_happy"):
                self.tracker.note_error(
                    f"Rebalance for fid {fid} on dev{devid} failed: Replication failed"
                )
                return False
            if outcome.error == "too_happy" or outcome.status == "lost_race":
                should_delete = devid in self.store.devids(fid) and self._another_copy(fid, devid)
            elif outcome.status == "would_worsen":
                self.tracker.note_error(
                    f"Rebalance for fid {fid} on dev{devid} failed: no suitable destination "
                    "devices available"
                )
                return False
            else:
                should_delete = True
            if should_delete:
                view = self.tracker.view()
                url = view.url(devid, fid)
                error = ""
                try:
                    res = self.tracker.http.request("DELETE", url)
                except StorageNodeError as exc:
                    res = None
                    error = str(exc)
                if res is None or res.status_code != 204:
                    reason = error if res is None else f"HTTP {res.status_code}"
                    self.tracker.note_error(
                        f"Rebalance for fid {fid} on dev{devid} failed: {reason}"
                    )
                    return False
                self.store.remove_file_on(fid, devid)
            return should_delete

    def _another_copy(self, fid: int, devid: int) -> bool:
        row = self.store.file_by_fid(fid)
        view = self.tracker.view()
        for other in self.store.devids(fid):
            dev = view.devices.get(other)
            if other == devid or dev is None or row is None or not dev.should_read_from:
                continue
            if head_size(self.tracker.http, view.url(other, fid, get=True)) == row.length:
                return True
        return False

    def replicate(
        self,
        fid: int,
        *,
        mask: Collection[int] = (),
        target: Collection[int] | None = None,
        fromdevid: int | None = None,
    ) -> Outcome:
        """Replicate.pm replicate(): copy until the class's policy is happy.

        ``mask``: copies the policy must not count (a rebalance source); ``target``: the
        only devices to copy to. The caller holds the fid's replicate lock.
        """
        store = self.store
        row = store.file_by_fid(fid)
        if row is None:
            return Outcome("nofid")
        cls = store.class_by_id(row.dmid, row.classid)
        policy, mindevcount = (
            (cls.policy_string, cls.mindevcount) if cls else ("MultipleHosts()", 2)
        )
        view = self.tracker.view()
        on_devs = [view.devices[d] for d in store.devids(fid) if d in view.devices]
        tellpol = [d for d in on_devs if d.should_have_files and d.devid not in mask]
        up = [d.devid for d in on_devs if d.should_read_from]
        if not on_devs:
            return self._failed(
                fid, "no_source", f"Source is no longer available replicating {fid}"
            )
        if not up:
            return self._failed(fid, "source_down", f"No alive devices available replicating {fid}")
        dests = (
            view.devices
            if not target
            else {d: view.devices[d] for d in target if d in view.devices}
        )
        failed: set[int] = set()
        source_failed: set[int] = set()
        copied = False
        rng = random.Random()
        request = None
        while not self.stopped:
            request = replicate_to(policy, mindevcount, tellpol, dests, failed, rng)
            if request.happy:
                break
            if request.ideal:
                choices = [d for d in request.ideal if d.devid not in mask]
                if not choices:
                    return Outcome("would_worsen")
                dest = choices[0]
            elif request.desperate:
                dest = request.desperate[0]
            else:
                break
            if dest.devid in failed or any(d.devid == dest.devid for d in on_devs):
                return self._failed(fid, "policy_error", f"replication policy erred on fid {fid}")
            sources = [d for d in up if d not in source_failed]
            if not sources:
                return self._failed(fid, "source_down", f"No devices available replicating {fid}")
            source = fromdevid if fromdevid in sources else rng.choice(sources)
            result = self._http_copy(view, fid, source, dest, cls.hashtype if cls else None)
            if result == "src_error":
                source_failed.add(source)
                continue
            if result == "dest_error":
                failed.add(dest.devid)
                continue
            copied = True
            store.add_file_on(fid, dest.devid)
            on_devs.append(dest)
            tellpol.append(dest)
            up.append(dest.devid)
        if request is None or self.stopped:
            return Outcome(0, "stopping")
        if request.too_happy:
            return Outcome(0, "too_happy")
        if request.happy:
            return Outcome(1 if copied else "lost_race")
        return self._failed(
            fid,
            "policy_no_suggestions",
            f"replication policy ran out of suggestions for us replicating fid {fid}",
        )

    def _failed(self, fid: int, code: str, message: str) -> Outcome:
        self.tracker.note_error(f"{code}: {message}")
        return Outcome(0, code)

    def _http_copy(
        self, view: ClusterView, fid: int, source: int, dest: DeviceView, class_hashtype: str | None
    ) -> str:
        """GET from ``source``, check the stored checksum, PUT to ``dest``: "ok",
        "src_error" or "dest_error". A class with a hashtype gets the file's checksum
        recorded if it had none (Replicate.pm)."""
        http = self.tracker.http
        src_url = view.url(source, fid, get=True)
        try:
            got = http.request("GET", src_url)
        except StorageNodeError as exc:
            self.tracker.note_error(f"replication read of {src_url} failed: {exc}")
            return "src_error"
        if got.status_code != 200:
            return "src_error"
        body = got.content
        stored = self.store.checksum(fid)
        hashtype = stored.hashtype if stored else class_hashtype
        digest = hashlib.new(HASHLIB_NAMES[hashtype], body).digest() if hashtype else None
        if stored is not None and digest != stored.digest:
            self.tracker.note_error(
                f"checksum mismatch on GET: expected: {stored.digest.hex()} "
                f"actual: {digest.hex() if digest else ''} ({src_url})"
            )
            return "src_error"
        dst_url = view.url(dest.devid, fid)
        try:
            http.put(dst_url, body, len(body))
        except StorageNodeError as exc:
            self.tracker.note_error(f"replication write to {dst_url} failed: {exc}")
            return "dest_error"
        if digest is not None and stored is None and hashtype:
            self.store.set_checksum(Checksum(fid, hashtype, digest))
        return "ok"


# ---------------------------------------------------------------------- deletion


class Deleter(QueueWorker):
    """Removes the copies of deleted files (HTTP DELETE: 2xx, or 404 if already gone) and,
    every round, abandoned uploads (Delete.pm process_deletes2 / process_tempfiles)."""

    job = "delete"
    idle_interval = 5.0

    def idle(self) -> None:
        with self.locked("mgfs:tempfiles") as taken:
            if taken:
                old = self.store.old_tempfiles(TEMPFILE_MAX_AGE)
                if old:
                    self.store.forget_tempfiles(old)

    def process(self, todo: Todo) -> None:
        store, fid, failcount = self.store, todo.row.fid, todo.row.failcount
        with self.locked(f"mgfs:fid:{fid}:replicate") as taken:
            if not taken:
                store.reschedule("file_to_delete2", fid, 1)
                return
            store.db.execute("DELETE FROM checksum WHERE fid=?", (fid,))
            store.db.execute("DELETE FROM tempfile WHERE fid=?", (fid,))
            view = self.tracker.view()
            left = set(store.devids(fid))
            for devid in sorted(left):
                dev = view.devices.get(devid)
                if dev is None:
                    continue
                if dev.status == "dead":
                    store.remove_file_on(fid, devid)
                    left.discard(devid)
                    continue
                if not dev.observed_writeable:
                    store.reschedule("file_to_delete2", fid, 60 * (10 + failcount))
                    continue
                if not dev.can_delete_from:
                    store.reschedule("file_to_delete2", fid, 3600 * (1 + failcount))
                    continue
                url = view.url(devid, fid)
                try:
                    res = self.tracker.http.request("DELETE", url)
                except StorageNodeError as exc:
                    self.tracker.note_error(f"delete of {url} failed: {exc}")
                    res = None
                if res is not None and (200 <= res.status_code < 300 or res.status_code == 404):
                    store.remove_file_on(fid, devid)
                    left.discard(devid)
                else:
                    store.reschedule("file_to_delete2", fid, 1800 * (1 + failcount))
            if not left:
                store.dequeue("file_to_delete2", fid)


class Reaper(Worker):
    """Reaper.pm: the copies recorded on a dead device are forgotten and their files
    queued for replication, 1000 at a time; a device is first reaped 16 s after it is
    seen dead (DEVICE_SUMMARY_CACHE_TIMEOUT + 1)."""

    job = "reaper"

    def __init__(self, tracker: FakeTracker) -> None:
        super().__init__(tracker, REAP_INTERVAL)
        self._seen: dict[int, float] = {}  # dead devid -> when to reap it next

    def run_once(self) -> None:
        now = time.monotonic()
        for dev in self.store.devices():
            if dev.status != "dead":
                self._seen.pop(dev.devid, None)
                continue
            due = self._seen.setdefault(dev.devid, now + self.tracker.config.reaper_delay)
            if due <= now:
                self._reap(dev.devid)

    def _reap(self, devid: int) -> None:
        with self.locked("mgfs:reaper") as taken:
            if not taken:
                return
            fids = self.store.fids_on_device(devid, limit=REAP_LIMIT)
            for fid in fids:
                # Enqueued before the copy is forgotten, so a crash in between loses nothing.
                self.store.enqueue_replication(fid, in_seconds=1)
                self.store.remove_file_on(fid, devid, recount=False)
        self._seen[devid] = time.monotonic() + (REAP_INTERVAL if fids else 60.0)


class Fsck(Worker):
    """A minimal fsck: when started, HEAD-checks every copy of the files not checked yet
    and counts the missing ones (fsck_sum_evcount_MISS); a batch at a time."""

    job = "fsck"
    BATCH = 500

    def __init__(self, tracker: FakeTracker) -> None:
        super().__init__(tracker, tracker.config.replicate_poll)

    def run_once(self) -> None:
        store = self.store
        if store.setting("fsck_host") != self.tracker.hostname:
            return
        with self.locked("mgfs:fsck") as taken:
            if not taken:
                return
            start = int(store.setting("fsck_highest_fid_checked") or 0)
            end = int(store.setting("fsck_fid_at_end") or 0)
            fids = store.fids_between(start, end, self.BATCH)
            view = self.tracker.view()
            missing = 0
            for fid in fids:
                row = store.file_by_fid(fid)
                for devid in store.devids(fid):
                    if devid not in view.devices or row is None:
                        continue
                    url = view.url(devid, fid, get=True)
                    missing += head_size(self.tracker.http, url) != row.length
            if missing:
                old = int(store.setting("fsck_sum_evcount_MISS") or 0)
                store.set_setting("fsck_sum_evcount_MISS", old + missing)
            if fids:
                store.set_setting("fsck_highest_fid_checked", fids[-1])
                self.wake.set()
                return
            store.set_setting("fsck_highest_fid_checked", start)
            store.set_setting("fsck_host", None)
            store.set_setting("fsck_stop_time", int(time.time()))
