"""What the staff status page shows: the tracker's hosts and devices, and replication.

This is the one place the site talks to MogileFS other than through Django's
storage API: ``django_mogilefs.cluster.ClusterAdmin`` for hosts, devices and
classes, and the storage's documented ``file_info(name)`` extra for copies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .models import Avatar

logger = logging.getLogger(__name__)

GOOD_DEVICE_STATES = {"alive"}
GOOD_OBSERVED_STATES = {"writeable"}


def cluster_admin():
    """A ClusterAdmin over the configured trackers (a function, so tests can replace it)."""
    from django_mogilefs.cluster import ClusterAdmin

    return ClusterAdmin(settings.MOGILEFS_TRACKERS)


@dataclass
class DeviceRow:
    devid: int
    host: str
    status: str
    observed_state: str
    weight: int | None
    mb_total: int | None
    mb_used: int | None
    mb_free: int | None
    ok: bool
    used_percent: float | None


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
    device_rows = []
    for d in devices:
        used = None
        if d.mb_total and d.mb_used is not None:
            used = round(100.0 * d.mb_used / d.mb_total, 1)
        device_rows.append(
            DeviceRow(
                devid=d.devid,
                host=host_names.get(d.hostid, f"host {d.hostid}"),
                status=d.status,
                observed_state=d.observed_state,
                weight=d.weight,
                mb_total=d.mb_total,
                mb_used=d.mb_used,
                mb_free=d.mb_free,
                ok=d.status in GOOD_DEVICE_STATES and d.observed_state in GOOD_OBSERVED_STATES,
                used_percent=used,
            )
        )
    classes = domains.get(settings.MOGILEFS_DOMAIN, {})
    totals = {
        "mb_total": sum(d.mb_total or 0 for d in devices),
        "mb_used": sum(d.mb_used or 0 for d in devices),
        "mb_free": sum(d.mb_free or 0 for d in devices),
    }
    totals["used_percent"] = (
        round(100.0 * totals["mb_used"] / totals["mb_total"], 1) if totals["mb_total"] else None
    )
    return {
        "hosts": hosts,
        "devices": device_rows,
        "totals": totals,
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
