"""What the staff status page shows: the tracker's hosts and devices, and replication.

This is the one place the site talks to MogileFS other than through Django's
storage API. Everything comes from the storage the ``Avatar.image`` field is
configured with (:func:`mogilefs_of` is the one function that reads its settings):
its ``ClusterAdmin`` for hosts, devices, classes and where a new file would go, the
storage's documented ``file_info(name)`` extra for copies, and
``django_mogilefs.probe`` to check each device's node as the tracker does. The
tracker's own report is not enough: a node that stops answering (rather than
refusing) is skipped by the tracker while ``get_devices`` still says ``writeable``.

A render costs three tracker reads (hosts, devices, classes) and no write. The
``create_open`` probe (a write: a temp file and a fid) is asked at most once per
``STATUS_CACHE_SECONDS`` by all workers together, through Django's cache. The recent
files' copies are asked in parallel and kept in that cache too: a file still short of
copies for ``STATUS_CACHE_SECONDS``, a file with every copy for
``STATUS_COMPLETE_CACHE_SECONDS``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import caches
from django.core.files.storage import Storage
from django_mogilefs.exceptions import MogileFSError, NoDevicesError
from django_mogilefs.probe import Probe, Verdict, probe_all

from .models import Avatar

if TYPE_CHECKING:
    from django_mogilefs.cluster import ClusterAdmin, DeviceInfo, HostInfo

logger = logging.getLogger(__name__)

FILE_INFO_THREADS = 8  # file_info round trips in flight at once for the recent files


@dataclass(frozen=True)
class MogileFS:
    """What the page reads of a MogileFS storage."""

    domain: str
    mogile_class: str  # the class new files of the storage go to
    admin: Callable[[], ClusterAdmin]  # cluster commands over the storage's own trackers


def mogilefs_of(storage: Storage) -> MogileFS:
    """The domain, class and cluster commands of a MogileFS storage (a function, so tests
    can replace it). The one place that reads the storage's settings: only its public
    attributes, never ``settings.MOGILEFS_*``."""
    config = storage.config
    return MogileFS(config.domain, config.mogile_class or "default", storage.cluster)


def configured_storage() -> Storage:
    """The storage of the originals, as the model field has it (``STORAGES["avatars"]``)."""
    return Avatar._meta.get_field("image").storage


def used_percent(mb_used: int | None, mb_total: int | None) -> float | None:
    """Share of a device (or of all devices) in use, for the space bars."""
    if not mb_total or mb_used is None:
        return None
    return round(100.0 * mb_used / mb_total, 1)


@dataclass
class DeviceRow:
    """A device as the tracker reports it, with its host's name and our probe of its node."""

    device: DeviceInfo
    host: str
    probe: Probe | None = None  # None when the tracker names no host for the device
    host_alive: bool = True  # the host's own status (the tracker uses only alive hosts)

    @property
    def used_percent(self) -> float | None:
        return used_percent(self.device.mb_used, self.device.mb_total)

    @property
    def node_state(self) -> str:
        """The probe's CSS state: ok, bad (down, as the tracker sees it) or warn."""
        if self.probe is None or self.probe.verdict in (Verdict.BAD_USAGE, Verdict.NOT_PROBED):
            return "warn"
        return "ok" if self.probe.answers else "bad"

    @property
    def up(self) -> bool:
        """Alive on an alive host, reported writeable, and its node answers: it takes new files."""
        reported = self.device.status == "alive" and self.device.observed_state == "writeable"
        return self.host_alive and reported and self.probe is not None and self.probe.answers

    @property
    def warning(self) -> str:
        """Why the tracker's ``writeable`` is not to be trusted, or empty."""
        probe = self.probe
        if self.device.observed_state != "writeable" or probe is None:
            return ""
        if probe.verdict is Verdict.NO_ANSWER:
            return (
                "the tracker reports writeable but the node does not answer: the tracker skips it"
            )
        if probe.verdict is Verdict.FAILS:
            return (
                "the tracker reports writeable but the node fails its check: the tracker "
                "marks the device unreachable at its next check"
            )
        return ""


@dataclass(frozen=True)
class Destinations:
    """Which devices ``create_open`` offers for a new file of ``cls``, or why none."""

    cls: str
    devids: list[int] = field(default_factory=list)
    error: str = ""
    asked_at: float = 0.0  # time.time() of the probe; 0: not asked yet (another view asks)


@dataclass(frozen=True)
class Space:
    """Sizes in MB (as the tracker reports them) of a device, a filesystem or a total."""

    mb_total: int
    mb_used: int
    mb_free: int

    @property
    def used_percent(self) -> float | None:
        return used_percent(self.mb_used, self.mb_total)


def _space(devices: list[DeviceInfo]) -> Space:
    return Space(
        mb_total=sum(d.mb_total or 0 for d in devices),
        mb_used=sum(d.mb_used or 0 for d in devices),
        mb_free=sum(d.mb_free or 0 for d in devices),
    )


def _same_filesystem(a: DeviceInfo, b: DeviceInfo) -> bool:
    """Whether two devices report one filesystem: the same size, and the same use give
    or take 1% (their usage files are written a few seconds apart). Both are sized."""
    total, used = a.mb_total or 0, a.mb_used or 0
    return b.mb_total == total and abs((b.mb_used or 0) - used) <= max(1, total // 100)


def filesystems(devices: list[DeviceInfo]) -> list[list[DeviceInfo]]:
    """The sized devices grouped by the filesystem they seem to be on.

    The tracker does not say which disk a device is on; devices whose reports match
    (see :func:`_same_filesystem`) are taken as one filesystem, as happens when every
    device is a directory on one disk (``make dev``, or compose volumes on one host).
    """
    groups: list[list[DeviceInfo]] = []
    for device in sorted(devices, key=lambda d: d.devid):
        if device.mb_total is None or device.mb_used is None:
            continue
        for group in groups:
            if _same_filesystem(group[0], device):
                group.append(device)
                break
        else:
            groups.append([device])
    return groups


@dataclass(frozen=True)
class Totals:
    """Space over all devices, each filesystem counted once."""

    space: Space
    filesystems: int
    # Device names ("dev1, dev2") of each filesystem that several devices report.
    shared: list[str]
    # The plain sum over devices, when it differs from ``space``.
    device_sum: Space | None


def totals(devices: list[DeviceInfo]) -> Totals:
    groups = filesystems(devices)
    space = _space([group[0] for group in groups])
    summed = _space([d for group in groups for d in group])
    shared = [", ".join(f"dev{d.devid}" for d in group) for group in groups if len(group) > 1]
    return Totals(space, len(groups), shared, summed if summed != space else None)


@dataclass
class FileRow:
    name: str
    url: str
    mogile_class: str = ""
    devcount: int | None = None
    mindevcount: int | None = None
    problem: str = ""
    note: str = ""

    @property
    def state(self) -> str:
        if self.problem:
            return "bad"
        if self.devcount is None or self.mindevcount is None:
            return "unknown"
        return "ok" if self.devcount >= self.mindevcount else "warn"


@dataclass
class AvatarRow:
    username: str
    files: list[FileRow] = field(default_factory=list)


def cluster_status(recent: int = 20) -> dict[str, Any]:
    """Hosts, devices, classes of our domain and replication of recent files.

    Raises whatever the tracker client raises when the tracker cannot be reached.
    """
    mogilefs = mogilefs_of(configured_storage())
    admin = mogilefs.admin()  # the storage's own trackers and connections: not closed here
    hosts = admin.get_hosts()
    devices = admin.get_devices()
    domains = admin.get_domains()
    found = mogilefs.domain in domains
    offered = None
    if settings.STATUS_ASK_CREATE_OPEN and found:
        offered = destinations(admin, mogilefs)

    age = round(time.time() - offered.asked_at) if offered and offered.asked_at else None
    device_rows = device_rows_probed(hosts, devices)
    classes = domains.get(mogilefs.domain, {})
    return {
        "hosts": hosts,
        "devices": device_rows,
        "devices_up": sum(row.up for row in device_rows),
        "warnings": [row for row in device_rows if row.warning],
        "destinations": offered,
        "destinations_age": age,
        "probe_timeout": settings.STATUS_PROBE_TIMEOUT_MS / 1000,
        "cache_seconds": settings.STATUS_CACHE_SECONDS,
        "complete_cache_seconds": settings.STATUS_COMPLETE_CACHE_SECONDS,
        "totals": totals(devices),
        "domain": mogilefs.domain,
        "domain_found": found,
        "classes": sorted(classes.values(), key=lambda c: c.name),
        "recent": replication(mogilefs.domain, classes, recent),
    }


def device_rows_probed(hosts: list[HostInfo], devices: list[DeviceInfo]) -> list[DeviceRow]:
    """Each device with its host's name and a probe of its usage file (all in parallel)."""
    by_id = {h.hostid: h for h in hosts}
    urls = {d.devid: by_id[d.hostid].usage_url(d.devid) for d in devices if d.hostid in by_id}
    probes = probe_all(urls.values(), timeout=settings.STATUS_PROBE_TIMEOUT_MS / 1000)
    rows = []
    for d in devices:
        host = by_id.get(d.hostid)
        name = host.name if host is not None else f"host {d.hostid}"
        probe = probes[urls[d.devid]] if d.devid in urls else None
        rows.append(DeviceRow(d, name, probe, host is not None and host.status == "alive"))
    return rows


def _cache_key(*parts: str) -> str:
    """A memcached-safe key (no spaces or control characters, whatever the names are)."""
    digest = hashlib.sha1("\0".join(parts).encode("utf-8")).hexdigest()
    return f"avatars:status:{parts[0]}:{digest}"


def destinations(admin: ClusterAdmin, mogilefs: MogileFS) -> Destinations:
    """Where the tracker would put a new file of the storage's class, asked (a write) at
    most once per ``STATUS_CACHE_SECONDS`` by every worker together.

    The lock is an atomic ``cache.add`` that lives as long as that period: whoever adds
    it asks, everyone else shows the last answer (and its age).
    """
    cache = caches["default"]
    key = _cache_key("create_open", mogilefs.domain, mogilefs.mogile_class)
    period = settings.STATUS_CACHE_SECONDS
    if not cache.add(key + ":asked", True, timeout=period):
        return cache.get(key) or Destinations(mogilefs.mogile_class)
    answer = _ask_create_open(admin, mogilefs.domain, mogilefs.mogile_class)
    cache.set(key, answer, timeout=max(10 * period, 60))
    return answer


def _ask_create_open(admin: ClusterAdmin, domain: str, cls: str) -> Destinations:
    """Ask the tracker where a new file of ``cls`` would go (the temp file is discarded)."""
    now = time.time()
    try:
        return Destinations(cls, admin.write_destinations(domain, cls), asked_at=now)
    except NoDevicesError:
        error = "the tracker offers no device for a new file (no_devices)"
        return Destinations(cls, error=error, asked_at=now)
    except MogileFSError as exc:
        logger.warning("Cluster status: create_open for class %r failed: %s", cls, exc)
        return Destinations(cls, error=f"create_open failed: {exc}", asked_at=now)


@dataclass(frozen=True)
class Copies:
    """What ``file_info`` said of a file, as kept in the cache."""

    mogile_class: str = ""
    devcount: int | None = None
    problem: str = ""
    note: str = ""


def replication(domain: str, classes: dict[str, Any], recent: int) -> list[AvatarRow]:
    """The recent avatars' files with their copies: from the cache, else asked in parallel."""
    rows: list[AvatarRow] = []
    files: list[tuple[FileRow, Storage]] = []
    for avatar in Avatar.objects.select_related("user").order_by("-updated")[:recent]:
        row = AvatarRow(username=avatar.user.get_username())
        for f in (avatar.image, avatar.thumbnail):
            row.files.append(FileRow(name=f.name, url=f.url))
            files.append((row.files[-1], f.storage))
        rows.append(row)
    for (row, _), copies in zip(files, _copies(domain, classes, files), strict=True):
        row.mogile_class, row.devcount = copies.mogile_class, copies.devcount
        row.problem, row.note = copies.problem, copies.note
        cls = classes.get(copies.mogile_class)
        row.mindevcount = cls.mindevcount if cls is not None else None
    return rows


def _copies(
    domain: str, classes: dict[str, Any], files: list[tuple[FileRow, Storage]]
) -> list[Copies]:
    """Each file's ``Copies``, in order; the ones the cache does not have are asked (all at
    once) and kept: a file with every copy its class asks for longer than the others."""
    cache = caches["default"]
    keys = [_cache_key("copies", domain, row.name) for row, _ in files]
    known = cache.get_many(keys)
    todo = [
        (key, row.name, getattr(storage, "file_info", None))  # looked up here, not in threads
        for key, (row, storage) in zip(keys, files, strict=True)
        if key not in known
    ]
    if todo:
        with ThreadPoolExecutor(max_workers=FILE_INFO_THREADS) as pool:
            answers = list(pool.map(lambda item: _ask_file_info(item[2], item[1]), todo))
        keep: dict[int, dict[str, Copies]] = {}
        for (key, _, _), copies in zip(todo, answers, strict=True):
            known[key] = copies
            if not copies.note:  # a storage without file_info: nothing was asked
                keep.setdefault(_keep_for(copies, classes), {})[key] = copies
        for seconds, entries in keep.items():
            cache.set_many(entries, timeout=seconds)
    return [known[key] for key in keys]


def _keep_for(copies: Copies, classes: dict[str, Any]) -> int:
    cls = classes.get(copies.mogile_class)
    complete = not copies.problem and cls is not None and copies.devcount >= cls.mindevcount
    return settings.STATUS_COMPLETE_CACHE_SECONDS if complete else settings.STATUS_CACHE_SECONDS


def _ask_file_info(file_info: Callable[[str], Any] | None, name: str) -> Copies:
    if file_info is None:
        return Copies(note="the storage backend has no file_info")
    try:
        info = file_info(name)
    except FileNotFoundError:
        return Copies(problem="missing from MogileFS")
    except Exception as exc:
        logger.warning("file_info(%r) failed: %s", name, exc)
        return Copies(problem=f"file_info failed: {exc}")
    return Copies(info.cls, info.devcount)
