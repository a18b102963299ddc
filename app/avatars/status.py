"""What the staff status page shows: the tracker's hosts and devices, and replication.

This is the one place the site talks to MogileFS other than through Django's
storage API: ``django_mogilefs.cluster.ClusterAdmin`` for hosts, devices and
classes, and the storage's documented ``file_info(name)`` extra for copies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from .models import Avatar

if TYPE_CHECKING:
    from django_mogilefs.cluster import DeviceInfo

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
    """A device as the tracker reports it, with its host's name."""

    device: DeviceInfo
    host: str

    @property
    def used_percent(self) -> float | None:
        return used_percent(self.device.mb_used, self.device.mb_total)


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
    finally:
        admin.close()

    host_names = {h.hostid: h.name for h in hosts}
    device_rows = [DeviceRow(d, host_names.get(d.hostid, f"host {d.hostid}")) for d in devices]
    classes = domains.get(settings.MOGILEFS_DOMAIN, {})
    return {
        "hosts": hosts,
        "devices": device_rows,
        "totals": totals(devices),
        "domain": settings.MOGILEFS_DOMAIN,
        "domain_found": settings.MOGILEFS_DOMAIN in domains,
        "classes": sorted(classes.values(), key=lambda c: c.name),
        "recent": replication(classes, recent),
    }


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
