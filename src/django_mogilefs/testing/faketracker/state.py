"""In-memory stand-in for the tracker's database, guarded by one lock.

The rows mirror MogileFS's tables (domain, class, host, device, file, file_on, tempfile,
file_to_replicate, file_to_delete2, server_settings); ids are allocated the way the
MySQL store allocates them. Several trackers may share one State (as mogilefsd
processes share one database): every time is wall-clock time, and the work a tracker's
background job has taken is leased in :attr:`State.inflight` so no other takes it too.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

HOST_STATES = ("alive", "down", "dead", "readonly")
DEVICE_STATES = ("alive", "dead", "down", "readonly", "drain")
DEFAULT_MINDEVCOUNT = 2  # default_mindevcount
MIN_FREE_SPACE_MB = 100  # min_free_space
HASH_TYPES = {"MD5": 16, "SHA-1": 20}  # MogileFS::Checksum: name -> digest bytes
HASHLIB_NAMES = {"MD5": "md5", "SHA-1": "sha1"}
SCHEMA_VERSION = "17"
INFLIGHT_LEASE = 120.0  # s a job's claim on a fid lasts if its tracker dies holding it


@dataclass
class ClassDef:
    classid: int
    name: str
    mindevcount: int
    replpolicy: str = ""
    hashtype: str | None = None

    @property
    def policy_string(self) -> str:
        return self.replpolicy or "MultipleHosts()"

    @property
    def hashtype_string(self) -> str:
        return self.hashtype or "NONE"


@dataclass
class Domain:
    dmid: int
    name: str
    classes: dict[int, ClassDef] = field(default_factory=dict)  # explicit class rows

    def class_by_id(self, classid: int) -> ClassDef | None:
        if classid in self.classes:
            return self.classes[classid]
        if classid == 0:
            return ClassDef(0, "default", DEFAULT_MINDEVCOUNT)
        return None

    def class_by_name(self, name: str) -> ClassDef | None:
        for cls in self.classes.values():
            if cls.name == name:
                return cls
        return self.class_by_id(0) if name == "default" else None

    def all_classes(self) -> list[ClassDef]:
        implicit = [] if 0 in self.classes else [ClassDef(0, "default", DEFAULT_MINDEVCOUNT)]
        return implicit + list(self.classes.values())


@dataclass
class Host:
    hostid: int
    hostname: str
    hostip: str
    http_port: int | None = None
    http_get_port: int | None = None
    status: str = "down"
    altip: str | None = None
    altmask: str | None = None
    observed: str = ""  # reachable / unreachable

    def fields(self) -> dict[str, object]:
        return {
            "hostid": self.hostid,
            "status": self.status,
            "hostname": self.hostname,
            "hostip": self.hostip,
            "http_port": self.http_port,
            "http_get_port": self.http_get_port,
            "altip": self.altip,
            "altmask": self.altmask,
        }


@dataclass
class Device:
    devid: int
    hostid: int
    status: str = "alive"
    weight: int = 100
    observed: str = ""  # writeable / readable / unreachable
    mb_total: int | None = None
    mb_used: int | None = None
    last_test_write: float = 0.0  # time.time()

    @property
    def mb_free(self) -> int | None:
        if self.mb_total is None or self.mb_used is None:
            return None
        return self.mb_total - self.mb_used

    @property
    def percent_free(self) -> float:
        if not self.mb_total or self.mb_used is None:
            return 0.0
        return 1 - self.mb_used / self.mb_total


@dataclass
class TempFile:
    fid: int
    dmid: int
    key: str
    classid: int
    devids: str
    createtime: int = field(default_factory=lambda: int(time.time()))


@dataclass
class FileRow:
    fid: int
    dmid: int
    key: str
    length: int
    classid: int
    devids: list[int] = field(default_factory=list)  # the file_on rows, sorted

    @property
    def devcount(self) -> int:
        return len(self.devids)


@dataclass
class Checksum:
    fid: int
    hashtype: str
    digest: bytes

    def info(self) -> str:
        return f"{self.hashtype}:{self.digest.hex()}"

    def __str__(self) -> str:  # MogileFS::Checksum::as_string
        return f"Checksum[f={self.fid};{self.hashtype}={self.digest.hex()}]"


@dataclass
class QueueRow:
    """A file_to_replicate or file_to_delete2 row (``nexttry`` is a time.time())."""

    fid: int
    nexttry: float
    failcount: int = 0
    devids: set[int] = field(default_factory=set)  # delete queue: copies still to remove


class State:
    """All tracker data. Hold :attr:`lock` while reading or changing anything."""

    def __init__(self) -> None:
        self.lock: AbstractContextManager[Any] = threading.RLock()  # statefile: a file lock
        self.domains: dict[int, Domain] = {}
        self.hosts: dict[int, Host] = {}
        self.devices: dict[int, Device] = {}
        self.files: dict[int, FileRow] = {}
        self.keys: dict[tuple[int, str], int] = {}  # (dmid, key) -> fid
        self.tempfiles: dict[int, TempFile] = {}
        self.checksums: dict[int, Checksum] = {}
        self.replicate_queue: dict[int, QueueRow] = {}
        self.delete_queue: dict[int, QueueRow] = {}
        self.settings: dict[str, str] = {"schema_version": SCHEMA_VERSION}
        self.next_dmid = 1
        # The MySQL store's start-up self-test registers tempfile fid 1 (dmid 99), so the
        # first real fid is 2, as on the recorded tracker.
        self.tempfiles[1] = TempFile(1, 99, "_server_startup_test", 0, "")
        self.next_fid = 2
        self.last_error = ""
        self.placement_hints: list[list[int]] = []
        # (job, fid) -> (owner tracker, lease expiry): work a tracker's job has taken.
        self.inflight: dict[tuple[str, int], tuple[str, float]] = {}
        self.stats: dict[str, int] = {
            "queries": 0,
            "times_out_of_qworkers": 0,
            "work_queue_for_delete": 0,
            "work_queue_for_replicate": 0,
            "work_sent_to_delete": 0,
            "work_sent_to_replicate": 0,
        }

    # ------------------------------------------------------------------ lookups

    def domain_by_name(self, name: str | None) -> Domain | None:
        return next((d for d in self.domains.values() if d.name == name), None)

    def host_by_name(self, name: str | None) -> Host | None:
        return next((h for h in self.hosts.values() if h.hostname == name), None)

    def file_by_key(self, dmid: int, key: str) -> FileRow | None:
        fid = self.keys.get((dmid, key))
        return self.files.get(fid) if fid is not None else None

    def device_url(self, devid: int, fid: int, *, get: bool = False, alt: bool = False) -> str:
        """DevFID->url (``get=False``) or ->get_url: ``http://ip:port/devN/d/ddd/ddd/F.fid``."""
        dev = self.devices[devid]
        host = self.hosts[dev.hostid]
        port = (host.http_get_port or host.http_port) if get else host.http_port
        ip = host.altip if alt and host.altip else host.hostip
        return f"http://{ip}:{port}{uri_path(devid, fid)}"

    def host_url(self, devid: int) -> str:
        dev = self.devices[devid]
        host = self.hosts[dev.hostid]
        return f"http://{host.hostip}:{host.http_port}"

    # ------------------------------------------------------------------ device predicates

    def host_alive(self, dev: Device) -> bool:
        host = self.hosts.get(dev.hostid)
        return host is not None and host.status == "alive"

    def host_ok(self, dev: Device) -> bool:
        """Device.pm host_ok: the monitor last reached the device's host."""
        host = self.hosts.get(dev.hostid)
        return host is not None and host.observed == "reachable"

    def observed_state(self, dev: Device) -> str:
        """What get_devices reports: nothing for down/dead devices or hosts not alive."""
        host = self.hosts.get(dev.hostid)
        if dev.status in ("down", "dead") or host is None or host.status in ("down", "dead"):
            return ""
        return dev.observed

    def should_get_new_files(self, dev: Device) -> bool:
        """Device->should_get_new_files: alive, observed writeable (host reachable), host
        alive, space left."""
        return (
            dev.status == "alive"
            and self.host_ok(dev)
            and self.observed_state(dev) == "writeable"
            and self.host_alive(dev)
            and not (dev.mb_total and (dev.mb_free or 0) < MIN_FREE_SPACE_MB)
        )

    def should_read_from(self, dev: Device) -> bool:
        """Device->should_read_from: readable state, host alive and reachable, device
        observed readable or writeable."""
        return (
            dev.status in ("alive", "readonly", "drain")
            and self.host_alive(dev)
            and self.host_ok(dev)
            and self.observed_state(dev) in ("writeable", "readable")
        )

    # ------------------------------------------------------------------ mutations

    def alloc_fid(self, explicit: int | None) -> int | None:
        """register_tempfile's fid: ``None`` if the explicit fid is taken."""
        if explicit:
            if explicit in self.tempfiles or explicit in self.files:
                return None
            self.next_fid = max(self.next_fid, explicit + 1)
            return explicit
        while self.next_fid in self.files or self.next_fid in self.tempfiles:
            self.next_fid += 1
        fid = self.next_fid
        self.next_fid += 1
        return fid

    def enqueue_replication(self, fid: int, delay: float = 0.0) -> None:
        row = self.replicate_queue.get(fid)
        nexttry = time.time() + delay
        if row is None:
            self.replicate_queue[fid] = QueueRow(fid, nexttry)
        else:
            row.nexttry = min(row.nexttry, nexttry)

    def enqueue_delete(self, fid: int, devids: set[int] | list[int]) -> None:
        if not devids:
            return
        row = self.delete_queue.setdefault(fid, QueueRow(fid, time.time()))
        row.devids.update(devids)

    def claim(self, job: str, fid: int, owner: str) -> bool:
        """Lease ``(job, fid)`` to ``owner`` unless another holds a live lease on it."""
        now = time.time()
        held = self.inflight.get((job, fid))
        if held is not None and held[1] > now:
            return False
        self.inflight[(job, fid)] = (owner, now + INFLIGHT_LEASE)
        return True

    def release(self, job: str, fid: int) -> None:
        self.inflight.pop((job, fid), None)

    def release_all(self, owner: str) -> None:
        """Drop every lease ``owner`` holds (its tracker is stopping)."""
        for item in [k for k, (who, _) in self.inflight.items() if who == owner]:
            del self.inflight[item]

    def delete_file(self, fid: int) -> None:
        """FID->delete: drop the file row, its key, checksum and tempfile; queue the copies."""
        row = self.files.pop(fid, None)
        self.tempfiles.pop(fid, None)
        self.checksums.pop(fid, None)
        self.replicate_queue.pop(fid, None)
        if row is not None:
            self.keys.pop((row.dmid, row.key), None)
            self.enqueue_delete(fid, row.devids)


def uri_path(devid: int, fid: int) -> str:
    """DevFID->uri_path: fid zero-padded to 10 digits and split 1/3/3."""
    nfid = f"{fid:010d}"
    return f"/dev{devid}/{nfid[0]}/{nfid[1:4]}/{nfid[4:7]}/{nfid}.fid"
