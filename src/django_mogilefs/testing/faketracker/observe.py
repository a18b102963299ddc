"""What one tracker's monitor has seen, and the device predicates built on it.

Each mogilefsd runs its own monitor and keeps what it saw in memory (it only writes the
devices' sizes to the database), so two trackers can disagree for a few seconds about a
device: so do two fakes. :class:`ClusterView` joins the database's host and device rows
with this tracker's observations; its :class:`DeviceView` answers the questions
MogileFS::Device answers (``should_get_new_files``, ``should_read_from``, ...).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .store import Device, Host, Store

MIN_FREE_SPACE_MB = 100  # mogilefsd's min_free_space default


@dataclass
class Seen:
    """The monitor's last word on one device."""

    observed: str = ""  # writeable / readable / unreachable
    mb_total: int | None = None
    mb_used: int | None = None
    last_test_write: float = 0.0


class Observations:
    """This tracker's monitor results, shared by its threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.devices: dict[int, Seen] = {}
        self.hosts: dict[int, str] = {}  # hostid -> reachable / unreachable

    def device(self, devid: int) -> Seen:
        with self.lock:
            return self.devices.setdefault(devid, Seen())

    def update(self, devid: int, **changes: object) -> None:
        with self.lock:
            seen = self.devices.setdefault(devid, Seen())
            for name, value in changes.items():
                setattr(seen, name, value)

    def set_host(self, hostid: int, observed: str) -> None:
        with self.lock:
            self.hosts[hostid] = observed


@dataclass
class DeviceView:
    row: Device
    host: Host | None
    seen: Seen
    host_observed: str = ""

    @property
    def devid(self) -> int:
        return self.row.devid

    @property
    def hostid(self) -> int:
        return self.row.hostid

    @property
    def status(self) -> str:
        return self.row.status

    @property
    def mb_total(self) -> int | None:
        return self.seen.mb_total if self.seen.mb_total is not None else self.row.mb_total

    @property
    def mb_used(self) -> int | None:
        return self.seen.mb_used if self.seen.mb_used is not None else self.row.mb_used

    @property
    def mb_free(self) -> int | None:
        total, used = self.mb_total, self.mb_used
        return None if total is None or used is None else total - used

    @property
    def percent_free(self) -> float:
        total, used = self.mb_total, self.mb_used
        return 1 - used / total if total and used is not None else 0.0

    @property
    def percent_full(self) -> float | None:
        total, used = self.mb_total, self.mb_used
        return used / total if total and used is not None else None

    # Host.pm / Device.pm / DeviceState.pm

    @property
    def host_alive(self) -> bool:
        return self.host is not None and self.host.status == "alive"

    @property
    def host_ok(self) -> bool:
        return self.host_observed == "reachable"

    @property
    def observed_state(self) -> str:
        """What get_devices reports: nothing for down/dead devices or hosts not alive."""
        if self.status in ("down", "dead") or self.host is None:
            return ""
        if self.host.status in ("down", "dead"):
            return ""
        return self.seen.observed

    @property
    def observed_writeable(self) -> bool:
        return self.host_ok and self.seen.observed == "writeable"

    @property
    def observed_readable(self) -> bool:
        return self.host_ok and self.seen.observed == "readable"

    @property
    def can_delete_from(self) -> bool:
        return self.host_alive and self.status in ("alive", "drain")

    @property
    def can_read_from(self) -> bool:
        host_reads = self.host is not None and self.host.status in ("alive", "readonly")
        return host_reads and self.status in ("alive", "readonly", "drain")

    @property
    def should_read_from(self) -> bool:
        return self.can_read_from and (self.observed_readable or self.observed_writeable)

    @property
    def should_get_new_files(self) -> bool:
        if self.status != "alive" or not self.observed_writeable or not self.host_alive:
            return False
        return not (self.mb_total and (self.mb_free or 0) < MIN_FREE_SPACE_MB)

    @property
    def should_have_files(self) -> bool:
        return self.status != "dead"

    @property
    def draining(self) -> bool:
        return self.status == "drain"


@dataclass
class ClusterView:
    """Hosts and devices from the database, seen through one tracker's observations."""

    hosts: dict[int, Host]
    devices: dict[int, DeviceView] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store, observations: Observations) -> ClusterView:
        hosts = {h.hostid: h for h in store.hosts()}
        view = cls(hosts)
        with observations.lock:
            for row in store.devices():
                seen = observations.devices.setdefault(row.devid, Seen())
                view.devices[row.devid] = DeviceView(
                    row, hosts.get(row.hostid), seen, observations.hosts.get(row.hostid, "")
                )
        return view

    def url(self, devid: int, fid: int, *, get: bool = False, alt: bool = False) -> str:
        """DevFID->url (``get=False``) or ->get_url: ``http://ip:port/devN/d/ddd/ddd/F.fid``."""
        host = self.hosts[self.devices[devid].hostid]
        port = (host.http_get_port or host.http_port) if get else host.http_port
        ip = host.altip if alt and host.altip else host.hostip
        return f"http://{ip}:{port}{uri_path(devid, fid)}"


def uri_path(devid: int, fid: int) -> str:
    """DevFID->uri_path: fid zero-padded to 10 digits and split 1/3/3."""
    nfid = f"{fid:010d}"
    return f"/dev{devid}/{nfid[0]}/{nfid[1:4]}/{nfid[4:7]}/{nfid}.fid"
