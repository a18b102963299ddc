"""What the staff status page shows: the tracker's hosts and devices, and replication.

This is the one place the site talks to MogileFS other than through Django's
storage API: ``django_mogilefs.cluster.ClusterAdmin`` for hosts, devices, classes
and where a new file would go, the storage's documented ``file_info(name)`` extra
for copies, and ``django_mogilefs.probe`` to check each device's node as the
tracker does. The tracker's own report is not enough: a node that stops answering
(rather than refusing) is skipped by the tracker while ``get_devices`` still says
``writeable``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django_mogilefs.exceptions import MogileFSError, NoDevicesError
from django_mogilefs.probe import Probe, Verdict, probe_all

from .models import Avatar

if TYPE_CHECKING:
    from django_mogilefs.cluster import ClusterAdmin, DeviceInfo, HostInfo

logger = logging.getLogger(__name__)


def cluster_admin():
    """A ClusterAdmin over the configured trackers (a function, so tests can replace it)."""
    from django_mogilefs.cluster import ClusterAdmin

    return ClusterAdmin(settings.MOGILEFS_TRACKERS)


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
    admin = cluster_admin()
    try:
        hosts = admin.get_hosts()
        devices = admin.get_devices()
        domains = admin.get_domains()
        offered = None
        if settings.STATUS_ASK_CREATE_OPEN and settings.MOGILEFS_DOMAIN in domains:
            offered = destinations(admin, settings.MOGILEFS_AVATAR_CLASS)
    finally:
        admin.close()

    device_rows = device_rows_probed(hosts, devices)
    classes = domains.get(settings.MOGILEFS_DOMAIN, {})
    return {
        "hosts": hosts,
        "devices": device_rows,
        "devices_up": sum(row.up for row in device_rows),
        "warnings": [row for row in device_rows if row.warning],
        "destinations": offered,
        "probe_timeout": settings.STATUS_PROBE_TIMEOUT_MS / 1000,
        "totals": totals(devices),
        "domain": settings.MOGILEFS_DOMAIN,
        "domain_found": settings.MOGILEFS_DOMAIN in domains,
        "classes": sorted(classes.values(), key=lambda c: c.name),
        "recent": replication(classes, recent),
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


def destinations(admin: ClusterAdmin, cls: str) -> Destinations:
    """Ask the tracker where a new file of ``cls`` would go (the temp file is discarded)."""
    try:
        return Destinations(cls, admin.write_destinations(settings.MOGILEFS_DOMAIN, cls))
    except NoDevicesError:
        return Destinations(cls, error="the tracker offers no device for a new file (no_devices)")
    except MogileFSError as exc:
        logger.warning("Cluster status: create_open for class %r failed: %s", cls, exc)
        return Destinations(cls, error=f"create_open failed: {exc}")


def replication(classes: dict[str, Any], recent: int) -> list[AvatarRow]:
    rows = []
    for avatar in Avatar.objects.select_related("user").order_by("-updated")[:recent]:
        row = AvatarRow(username=avatar.user.get_username())
        for f in (avatar.image, avatar.thumbnail):
            row.files.append(_file_row(f, classes))
        rows.append(row)
    return rows


def _file_row(fieldfile, classes: dict[str, Any]) -> FileRow:
    row = FileRow(name=fieldfile.name, url=fieldfile.url)
    file_info = getattr(fieldfile.storage, "file_info", None)
    if file_info is None:
        row.note = "the storage backend has no file_info"
        return row
    try:
        info = file_info(fieldfile.name)
    except FileNotFoundError:
        row.problem = "missing from MogileFS"
        return row
    except Exception as exc:
        logger.warning("file_info(%r) failed: %s", fieldfile.name, exc)
        row.problem = f"file_info failed: {exc}"
        return row
    row.mogile_class = info.cls
    row.devcount = info.devcount
    cls = classes.get(info.cls)
    row.mindevcount = cls.mindevcount if cls is not None else None
    return row
