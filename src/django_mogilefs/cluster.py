"""Cluster administration: domains, classes, hosts and devices (used by bootstrap and status).

pymogilefs's ``Backend.get_domains`` crashes on a real tracker's answer (its regex
knows only ``domainNclassM...`` keys) and ``create_class`` cannot pass ``replpolicy``
or ``hashtype``; this module parses every key the server sends and passes every
argument the server accepts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .exceptions import NoDevicesError, ProtocolError, TrackerError
from .protocol import destinations
from .tracker import TrackerPool

DEVICE_STATES = ("alive", "down", "readonly", "drain", "dead")
HOST_STATES = ("alive", "down", "dead", "readonly")


@dataclass(frozen=True)
class ClassInfo:
    name: str
    mindevcount: int
    replpolicy: str
    hashtype: str


@dataclass(frozen=True)
class HostInfo:
    hostid: int
    name: str
    ip: str
    http_port: int
    status: str
    http_get_port: int | None = None
    altip: str = ""
    altmask: str = ""

    def usage_url(self, devid: int) -> str:
        """Where the tracker's monitor reads a device's usage (on the GET port if one is set)."""
        return f"http://{self.ip}:{self.http_get_port or self.http_port}/dev{devid}/usage"


@dataclass(frozen=True)
class DeviceInfo:
    devid: int
    hostid: int
    status: str
    observed_state: str
    weight: int | None
    mb_total: int | None
    mb_used: int | None
    mb_free: int | None

    @property
    def ready(self) -> bool:
        """Alive, seen writeable by the monitor, and its size known (bootstrap's readiness)."""
        return (
            self.status == "alive"
            and self.observed_state == "writeable"
            and self.mb_total is not None
        )


@dataclass(frozen=True)
class FidInfo:
    """One file of ``list_fids`` (every domain), with its copies once ``file_debug`` ran."""

    fid: int
    domain: str
    cls: str
    key: str
    length: int
    devcount: int
    devids: tuple[int, ...] = ()


def parse_rebalance_state(text: str) -> dict[str, str]:
    """A ``rebal_state`` / ``rebalance_status`` string: ``key=value`` words."""
    return dict(word.partition("=")[::2] for word in text.split())


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def parse_domains(data: dict[str, str]) -> dict[str, dict[str, ClassInfo]]:
    """Decode ``get_domains``: ``domainN``, ``domainNclasses``, ``domainNclassMname``, ..."""
    domains: dict[str, dict[str, ClassInfo]] = {}
    for n in range(1, int(data.get("domains") or 0) + 1):
        name = data.get(f"domain{n}")
        if name is None:
            continue
        classes = {}
        for m in range(1, int(data.get(f"domain{n}classes") or 0) + 1):
            prefix = f"domain{n}class{m}"
            cls = data.get(f"{prefix}name")
            if cls is None:
                continue
            classes[cls] = ClassInfo(
                name=cls,
                mindevcount=int(data.get(f"{prefix}mindevcount") or 0),
                replpolicy=data.get(f"{prefix}replpolicy", ""),
                hashtype=data.get(f"{prefix}hashtype", "NONE") or "NONE",
            )
        domains[name] = classes
    return domains


def _records(data: dict[str, str], count_key: str, prefix: str, id_field: str):
    """The numbered records of an answer (``host1_hostid=...``) as dicts of their fields."""
    for n in range(1, int(data.get(count_key) or 0) + 1):
        p = prefix % n
        if f"{p}{id_field}" in data:
            yield {key[len(p) :]: value for key, value in data.items() if key.startswith(p)}


def parse_hosts(data: dict[str, str]) -> list[HostInfo]:
    hosts = [
        HostInfo(
            hostid=int(r["hostid"]),
            name=r.get("hostname", ""),
            ip=r.get("hostip", ""),
            http_port=int(r.get("http_port") or 0),
            status=r.get("status", ""),
            http_get_port=_int(r.get("http_get_port")),
            altip=r.get("altip", ""),
            altmask=r.get("altmask", ""),
        )
        for r in _records(data, "hosts", "host%d_", "hostid")
    ]
    return sorted(hosts, key=lambda h: h.hostid)


def parse_devices(data: dict[str, str]) -> list[DeviceInfo]:
    devices = [
        DeviceInfo(
            devid=int(r["devid"]),
            hostid=int(r.get("hostid") or 0),
            status=r.get("status", ""),
            observed_state=r.get("observed_state", ""),
            weight=_int(r.get("weight")),
            mb_total=_int(r.get("mb_total")),
            mb_used=_int(r.get("mb_used")),
            mb_free=_int(r.get("mb_free")),
        )
        for r in _records(data, "devices", "dev%d_", "devid")
    ]
    return sorted(devices, key=lambda d: d.devid)


class ClusterAdmin:
    """Namespace and cluster commands against a set of trackers.

    Mutating commands wait for a monitor round on a real tracker (up to ~2.5 s),
    so the default timeout is generous. Errors are the typed exceptions of
    :mod:`django_mogilefs.exceptions` (``DomainExistsError``, ``HostExistsError``...).
    """

    def __init__(
        self,
        trackers: str | Sequence[str] | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        pool: TrackerPool | None = None,
    ) -> None:
        if pool is None:
            if trackers is None:
                raise ValueError("ClusterAdmin needs trackers or a pool")
            pool = TrackerPool(trackers, timeout=timeout, connect_timeout=connect_timeout)
        self.pool = pool

    def get_domains(self) -> dict[str, dict[str, ClassInfo]]:
        return parse_domains(self.pool.request("get_domains"))

    def create_domain(self, domain: str) -> None:
        self.pool.request("create_domain", {"domain": domain})

    def create_class(self, domain: str, cls: str, mindevcount: int, **policy: str | None) -> None:
        """``policy``: ``replpolicy``, ``hashtype`` (None: the tracker's default)."""
        self.pool.request("create_class", _class_args(domain, cls, mindevcount, **policy))

    def update_class(self, domain: str, cls: str, mindevcount: int, **policy: str | None) -> None:
        self.pool.request("update_class", _class_args(domain, cls, mindevcount, **policy))

    def get_hosts(self) -> list[HostInfo]:
        return parse_hosts(self.pool.request("get_hosts"))

    def create_host(self, name: str, ip: str, port: int, status: str = "alive") -> int:
        """Create a host (alive by default: the tracker's own default is ``down``)."""
        data = self.pool.request(
            "create_host", {"host": name, "ip": ip, "port": port, "status": status}
        )
        return int(data["hostid"])

    def update_host(self, name: str, **fields: object) -> None:
        """Change ``ip``, ``port``, ``status``, ``getport``, ``altip`` or ``altmask``."""
        self.pool.request("update_host", {"host": name, **fields})

    def get_devices(self) -> list[DeviceInfo]:
        return parse_devices(self.pool.request("get_devices"))

    def create_device(self, devid: int, hostname: str, state: str = "alive") -> None:
        self.pool.request("create_device", {"devid": devid, "hostname": hostname, "state": state})

    def write_destinations(self, domain: str, cls: str | None = None) -> list[int]:
        """The devices the tracker offers for a new file now (up to 3 in 2.73), in its order.

        This asks ``create_open`` with ``multi_dest=1`` and at once discards the
        upload with a ``create_close`` that has no key, the documented way to throw
        a temp file away. What stays behind: one fid number, and a delete job for
        the never-written file on the first device, which the tracker's delete
        worker clears (a 404 counts as deleted). Should the close fail, the temp
        row stays until the delete worker drops temp files older than an hour.
        Raises ``NoDevicesError`` when the tracker would accept no new file.
        """
        opened = self.pool.request("create_open", {"domain": domain, "class": cls, "multi_dest": 1})
        offered = destinations(opened)
        if not offered:
            raise ProtocolError(f"create_open offered no device: {opened}")
        devid, path = offered[0]
        self.pool.request(
            "create_close", {"domain": domain, "fid": opened["fid"], "devid": devid, "path": path}
        )
        return [int(d) for d, _ in offered]

    def avoided_devices(self, domain: str, cls: str | None = None, *, asks: int = 10) -> set[int]:
        """The alive devices the tracker does not use now: reported not writeable (a
        node that refuses), or on a host ``create_open`` never offers (a node that is
        gone: a 2.73 tracker skips its host while ``get_devices`` still says
        ``writeable``). One ``create_open`` offers a device on each of at most three
        hosts, chosen by free space, so this asks up to ``asks`` times, and stops once
        every host with a writeable device has been offered."""
        alive = [d for d in self.get_devices() if d.status == "alive"]
        hostids = {d.devid: d.hostid for d in alive}
        candidates = {d.hostid for d in alive if d.observed_state == "writeable"}
        offered: set[int] = set()
        for _ in range(asks):
            try:
                offered |= {hostids.get(d) for d in self.write_destinations(domain, cls)}
            except NoDevicesError:
                break
            if candidates <= offered:
                break
        return {
            d.devid for d in alive if d.observed_state != "writeable" or d.hostid not in offered
        }

    def set_state(self, hostname: str, devid: int, state: str) -> None:
        self.pool.request("set_state", {"host": hostname, "device": devid, "state": state})

    def set_weight(self, hostname: str, devid: int, weight: int) -> None:
        self.pool.request("set_weight", {"host": hostname, "device": devid, "weight": weight})

    # -- files across domains (list_fids, file_debug) ------------------------------------

    def list_fids(self, after: int = 0, count: int = 500) -> list[FidInfo]:
        """Files with a fid above ``after``, at most ``count`` (the tracker caps it at 500)."""
        data = self.pool.request("list_fids", {"from": after, "to": count})
        return [
            FidInfo(
                int(data[f"fid_{n}_fid"]),
                data.get(f"fid_{n}_domain", ""),
                data.get(f"fid_{n}_class", ""),
                data.get(f"fid_{n}_key", ""),
                int(data.get(f"fid_{n}_length") or 0),
                int(data.get(f"fid_{n}_devcount") or 0),
            )
            for n in range(1, int(data.get("fid_count") or 0) + 1)
        ]

    def iter_fids(self) -> Iterator[FidInfo]:
        """Every file of the cluster, in fid order, 500 per request."""
        after = 0
        while page := self.list_fids(after):
            yield from page
            after = page[-1].fid

    def devids_of(self, fid: int) -> tuple[int, ...]:
        """The devices ``fid`` has copies on now (``file_debug``: the file_on rows, not the
        file's devcount, which the reaper leaves stale)."""
        data = self.pool.request("file_debug", {"fid": fid})
        return tuple(sorted(int(d) for d in (data.get("devids") or "").split(",") if d))

    # -- settings and rebalancing -----------------------------------------------------------

    def server_settings(self) -> dict[str, str]:
        data = self.pool.request("server_settings")
        count = int(data.get("key_count") or 0)
        return {data[f"key_{n}"]: data.get(f"value_{n}", "") for n in range(1, count + 1)}

    def rebalance_set_policy(self, policy: str) -> None:
        """Set the policy (and forget any earlier run's state); see docs/operations.md."""
        self.pool.request("rebalance_set_policy", {"policy": policy})

    def rebalance_test(self) -> tuple[list[int], list[int]]:
        """The policy's (source, destination) devices, as the tracker would pick them now."""
        data = self.pool.request("rebalance_test")
        ids = [[int(d) for d in (data.get(k) or "").split(",") if d] for k in ("sdevs", "ddevs")]
        return ids[0], ids[1]

    def rebalance_start(self) -> dict[str, str]:
        return parse_rebalance_state(self.pool.request("rebalance_start").get("state", ""))

    def rebalance_status(self) -> dict[str, str] | None:
        """The last run's state, or None when there is none (``no_rebal_state``)."""
        try:
            data = self.pool.request("rebalance_status")
        except TrackerError as exc:
            if exc.code == "no_rebal_state":
                return None
            raise
        return parse_rebalance_state(data.get("state", ""))

    def rebalance_stop(self) -> None:
        self.pool.request("rebalance_stop")

    def rebalance_reset(self) -> None:
        self.pool.request("rebalance_reset")

    def close(self) -> None:
        self.pool.close()


def avoided_by_trackers(
    trackers: Sequence[str], domain: str, cls: str | None = None
) -> dict[str, set[int]]:
    """:meth:`ClusterAdmin.avoided_devices` as each tracker sees it: every tracker runs
    its own monitor, so one may still offer a device that another avoids, for seconds."""
    out = {}
    for tracker in trackers:
        admin = ClusterAdmin([tracker])
        try:
            out[tracker] = admin.avoided_devices(domain, cls)
        finally:
            admin.close()
    return out


def _class_args(
    domain: str,
    cls: str,
    mindevcount: int,
    *,
    replpolicy: str | None = None,
    hashtype: str | None = None,
) -> dict[str, object]:
    return {
        "domain": domain,
        "class": cls,
        "mindevcount": mindevcount,
        "replpolicy": replpolicy,
        "hashtype": hashtype,
    }
