#!/usr/bin/env python3
"""Day-two operations on a MogileFS cluster: a dead disk, a new machine, a retired one.

### Usage: .venv/bin/python scripts/clusterctl.py [--trackers HOST:PORT,...] COMMAND ...
###   status                         hosts, devices, files per state, the rebalance
###   mark-dead HOST DEVID [--force] a disk is lost: its files are copied again
###   spread HOST [--bytes N] [--wait S]   move a share of the files onto a new machine
###   retire HOST [--wait S]         move every file off a machine, then mark it dead
###   copies [--exclude DEVID,...]   check that every file has its class's copies
(.venv is what `make deps` installs: the client is the django-mogilefs package)

Each command is a few tracker requests (what mogadm would send, see docs/operations.md):
``set_state`` for a dead disk, a rebalance policy and ``rebalance_start`` to move files.
It refuses what would lose copies: marking dead a device when the class keeping the
most copies would then have fewer alive devices than copies, a retire that leaves too
few hosts, a spread whose destinations are one host (MogileFS 2.73's rebalance deletes
copies then: docs/operations.md). Checks of copies read every file's devices from the
tracker (``list_fids`` + ``file_debug``), a request per file.

Environment: MOGILEFS_TRACKERS (default 127.0.0.1:7001).
Exit status: 0 done, 1 refused or failed (message on stderr), 2 bad command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

try:
    from django_mogilefs.cluster import ClusterAdmin, DeviceInfo, HostInfo
    from django_mogilefs.exceptions import MogileFSError, TrackerUnavailableError
except ImportError as exc:  # pragma: no cover - depends on how the script is started
    sys.exit(
        f"clusterctl: error: cannot import django_mogilefs ({exc}): run it with .venv/bin/python"
    )

DEFAULT_TRACKERS = "127.0.0.1:7001"
POLL = 1.0


class Refused(Exception):
    """The operation would lose copies or cannot be done; the message says why."""


@dataclass
class Copies:
    """The result of checking every file's copies, by "domain/key (class)"."""

    files: int = 0
    short: dict[str, str] = field(default_factory=dict)  # -> "N of M copies"
    lost: set[str] = field(default_factory=set)  # no copy left at all
    on_excluded: set[str] = field(default_factory=set)  # still on an excluded device

    @property
    def bad(self) -> set[str]:
        """The files without their class's copies (short or lost)."""
        return set(self.short) | self.lost


class Cluster:
    """What the commands need to know, read from the tracker."""

    def __init__(self, admin: ClusterAdmin) -> None:
        self.admin = admin
        self.hosts = {h.hostid: h for h in admin.get_hosts()}
        self.devices = {d.devid: d for d in admin.get_devices()}
        self.classes = {
            (domain, name): info.mindevcount
            for domain, classes in admin.get_domains().items()
            for name, info in classes.items()
        }

    def host(self, name: str) -> HostInfo:
        for host in self.hosts.values():
            if host.name == name:
                return host
        raise Refused(f"no host {name!r} on the tracker (hosts: {self.host_names()})")

    def host_names(self) -> str:
        return ", ".join(sorted(h.name for h in self.hosts.values())) or "none"

    def devices_of(
        self, hostid: int, states: Iterable[str] = ("alive", "drain", "readonly", "down")
    ) -> list[DeviceInfo]:
        return sorted(
            (d for d in self.devices.values() if d.hostid == hostid and d.status in states),
            key=lambda d: d.devid,
        )

    def most_copies(self) -> tuple[str, int]:
        """The class keeping the most copies: ("domain/class", mindevcount)."""
        if not self.classes:
            return "(none)", 1
        (domain, name), count = max(self.classes.items(), key=lambda item: item[1])
        return f"{domain}/{name}", count

    def check_leaves_enough(self, gone: set[int], what: str) -> None:
        """Refuse when the alive devices left, or their hosts, are fewer than the copies
        of the class that keeps the most."""
        alive = [d for d in self.devices.values() if d.status == "alive" and d.devid not in gone]
        hosts = {d.hostid for d in alive}
        cls, copies = self.most_copies()
        if len(alive) < copies:
            raise Refused(
                f"{what} would leave {len(alive)} alive device(s), and class {cls} keeps "
                f"{copies} copies: add a device first (or --force to accept fewer copies)"
            )
        if len(hosts) < copies:
            print(
                f"clusterctl: note: {what} leaves {len(hosts)} host(s) for class {cls}'s "
                f"{copies} copies: some copies will share a host",
                file=sys.stderr,
            )


def check_copies(
    admin: ClusterAdmin, classes: Mapping[tuple[str, str], int], exclude: set[int]
) -> Copies:
    """Every file's copies (not on ``exclude``, not on dead devices) against its class."""
    dead = {d.devid for d in admin.get_devices() if d.status == "dead"}
    result = Copies()
    for info in admin.iter_fids():
        result.files += 1
        devids = set(admin.devids_of(info.fid))
        kept = devids - exclude - dead
        wanted = classes.get((info.domain, info.cls), 2)
        name = f"{info.domain}/{info.key} ({info.cls})"
        if devids & exclude:
            result.on_excluded.add(name)
        if not kept:
            result.lost.add(name)
        elif len(kept) < wanted:
            result.short[name] = f"{len(kept)} of {wanted} copies"
    return result


def wait_for(what: str, check: Callable[[], str | None], seconds: float, out: TextIO) -> None:
    """Poll ``check`` (None when done, else what is still missing) for ``seconds``."""
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while (left := check()) is not None:
        if time.monotonic() > deadline:
            raise Refused(f"{what}: not done after {seconds:g} s ({left})")
        time.sleep(POLL)
    print(f"{what}: done after {time.monotonic() - started:.1f} s", file=out, flush=True)


def rebalance_finished(admin: ClusterAdmin) -> str | None:
    if admin.server_settings().get("rebal_host"):
        state = admin.rebalance_status() or {}
        return f"rebalance running, {state.get('fids_queued', 0)} file(s) queued so far"
    return None


def start_rebalance(admin: ClusterAdmin, policy: str, out: TextIO) -> None:
    if admin.server_settings().get("rebal_host"):
        raise Refused("a rebalance is running already (clusterctl status; mogadm rebalance stop)")
    admin.rebalance_set_policy(policy)
    sources, dests = admin.rebalance_test()
    print(f"rebalance policy: {policy}", file=out)
    print(f"  from device(s) {_ids(sources)} to device(s) {_ids(dests)}", file=out, flush=True)
    if not sources or not dests:
        raise Refused("the policy finds no source or no destination device")
    admin.rebalance_start()


# -- commands --------------------------------------------------------------------------


def cmd_status(admin: ClusterAdmin, args: argparse.Namespace, out: TextIO) -> None:
    cluster = Cluster(admin)
    for host in sorted(cluster.hosts.values(), key=lambda h: h.hostid):
        print(f"host {host.hostid} {host.name} {host.ip}:{host.http_port} {host.status}", file=out)
        for dev in cluster.devices_of(host.hostid, ("alive", "drain", "readonly", "down", "dead")):
            observed = dev.observed_state or "-"
            print(f"  device {dev.devid}: {dev.status}, {observed}", file=out)
    state = admin.rebalance_status()
    running = bool(admin.server_settings().get("rebal_host"))
    if state is None:
        print("rebalance: none", file=out)
    else:
        print(
            f"rebalance: {'running' if running else 'stopped'}, {state.get('fids_queued')} "
            f"file(s) queued, done with device(s) {state.get('completed_devs', '').strip(',')}",
            file=out,
        )


def cmd_mark_dead(admin: ClusterAdmin, args: argparse.Namespace, out: TextIO) -> None:
    cluster = Cluster(admin)
    host = cluster.host(args.host)
    device = cluster.devices.get(args.devid)
    if device is None or device.hostid != host.hostid:
        devids = [
            d.devid
            for d in cluster.devices_of(host.hostid, ("alive", "drain", "readonly", "down", "dead"))
        ]
        raise Refused(f"host {host.name} has no device {args.devid} (it has {_ids(devids)})")
    if device.status == "dead":
        print(f"device {args.devid} on {host.name} is dead already", file=out)
        return
    if not args.force:
        cluster.check_leaves_enough({args.devid}, f"marking device {args.devid} dead")
    admin.set_state(host.name, args.devid, "dead")
    print(
        f"device {args.devid} on {host.name} is dead: the trackers forget its copies and copy "
        "those files again from their other copies (clusterctl copies shows the progress)",
        file=out,
    )
    if args.wait:
        classes = cluster.classes
        wait_for(
            "every file back to its copies",
            lambda: _short(check_copies(admin, classes, {args.devid})),
            args.wait,
            out,
        )


def cmd_spread(admin: ClusterAdmin, args: argparse.Namespace, out: TextIO) -> None:
    cluster = Cluster(admin)
    new = cluster.host(args.host)
    if not cluster.devices_of(new.hostid, ("alive",)):
        raise Refused(f"host {new.name} has no alive device yet (run bootstrap first)")
    others = [h for h in cluster.hosts.values() if h.hostid != new.hostid and h.status == "alive"]
    # One device per other host is emptied a little; the destinations are every other
    # alive device. With only the new host's devices as destinations, 2.73 deletes
    # source copies without making new ones (docs/operations.md).
    sources = [devs[0].devid for h in others if (devs := cluster.devices_of(h.hostid, ("alive",)))]
    dests = [
        d.devid for d in cluster.devices.values() if d.status == "alive" and d.devid not in sources
    ]
    _, copies = cluster.most_copies()
    if len(dests) < copies or not sources:
        raise Refused(
            f"spreading needs at least {copies} destination devices besides the sources "
            f"(there are {len(dests)}): add devices, or move files with your own policy"
        )
    limit = args.bytes or _fair_share(admin, cluster, new.hostid, len(sources))
    if limit <= 0:
        print("nothing to spread: the cluster holds no file", file=out)
        return
    policy = (
        f"from_devices={','.join(map(str, sources))} limit_type=device limit_by=size "
        f"limit={limit} leave_in_drain_mode=0"
    )
    start_rebalance(admin, policy, out)
    if args.wait:
        wait_for("the rebalance", lambda: rebalance_finished(admin), args.wait, out)


def cmd_retire(admin: ClusterAdmin, args: argparse.Namespace, out: TextIO) -> None:
    cluster = Cluster(admin)
    host = cluster.host(args.host)
    devices = {d.devid for d in cluster.devices_of(host.hostid)}
    if not devices:
        raise Refused(f"host {host.name} has no device left that is not dead")
    cluster.check_leaves_enough(devices, f"retiring {host.name}")
    classes = cluster.classes
    already = check_copies(admin, classes, set()).bad  # e.g. thumbnails of a dead disk
    if already:
        print(f"note: {len(already)} file(s) lack copies already; not counted", file=out)
    others = [
        h.hostid for h in cluster.hosts.values() if h.hostid != host.hostid and h.status == "alive"
    ]
    policy = (
        f"from_devices={','.join(map(str, sorted(devices)))} "
        f"to_hosts={','.join(map(str, sorted(others)))} leave_in_drain_mode=1"
    )
    start_rebalance(admin, policy, out)
    wait_for("the rebalance", lambda: rebalance_finished(admin), args.wait, out)
    wait_for(
        f"no file left on {host.name}",
        lambda: _left_on(check_copies(admin, classes, devices)),
        args.wait,
        out,
    )
    result = check_copies(admin, classes, devices)
    worse = sorted(result.bad - already)
    if worse:
        raise Refused(
            f"{len(worse)} file(s) would lose a copy, e.g. {worse[:3]}: "
            f"{host.name} stays in drain, not dead"
        )
    for devid in sorted(devices):
        admin.set_state(host.name, devid, "dead")
    admin.update_host(host.name, status="dead")
    print(
        f"{host.name} is retired: {result.files} file(s) checked, every one with its copies "
        f"elsewhere; device(s) {_ids(sorted(devices))} and the host are dead. Remove it from "
        "the cluster description; its machine can be switched off.",
        file=out,
    )


def cmd_copies(admin: ClusterAdmin, args: argparse.Namespace, out: TextIO) -> None:
    cluster = Cluster(admin)
    result = check_copies(admin, cluster.classes, set(args.exclude))
    print(
        f"{result.files} file(s): {len(result.short)} short of copies, {len(result.lost)} "
        f"with no copy, {len(result.on_excluded)} on device(s) {_ids(args.exclude)}",
        file=out,
    )
    lines = [f"{name}: {what}" for name, what in result.short.items()]
    lines += [f"{name}: no copy" for name in sorted(result.lost)]
    for line in lines[:20]:
        print(f"  {line}", file=out)
    if result.bad:
        raise Refused("some files do not have their class's copies")


# -- helpers ---------------------------------------------------------------------------


def _ids(devids: Sequence[int]) -> str:
    return ", ".join(map(str, devids)) or "none"


def _short(result: Copies) -> str | None:
    if result.short:
        name, what = next(iter(result.short.items()))
        return f"{len(result.short)} file(s) short, e.g. {name}: {what}"
    return None


def _left_on(result: Copies) -> str | None:
    return f"{len(result.on_excluded)} file(s) still there" if result.on_excluded else None


def _fair_share(admin: ClusterAdmin, cluster: Cluster, hostid: int, sources: int) -> int:
    """Bytes to take from each source device so the new host ends with its share."""
    total = sum(info.length * info.devcount for info in admin.iter_fids())
    alive = [d for d in cluster.devices.values() if d.status == "alive"]
    new = [d for d in alive if d.hostid == hostid]
    return int(total * len(new) / max(len(alive), 1) / max(sources, 1))


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="clusterctl.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trackers",
        default=environ.get("MOGILEFS_TRACKERS") or DEFAULT_TRACKERS,
        help="comma-separated host:port (env MOGILEFS_TRACKERS; default: %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="hosts, devices and the rebalance")
    dead = commands.add_parser("mark-dead", help="a disk is lost: mark its device dead")
    dead.add_argument("host")
    dead.add_argument("devid", type=int)
    dead.add_argument("--force", action="store_true", help="even if copies would be short")
    dead.add_argument("--wait", type=float, default=0, metavar="S", help="until copied again")
    spread = commands.add_parser("spread", help="move a share of the files onto a new host")
    spread.add_argument("host")
    spread.add_argument("--bytes", type=int, default=0, help="from each source device")
    spread.add_argument("--wait", type=float, default=0, metavar="S", help="until it is done")
    retire = commands.add_parser("retire", help="empty a host, then mark it dead")
    retire.add_argument("host")
    retire.add_argument("--wait", type=float, default=3600, metavar="S", help="(%(default)s)")
    copies = commands.add_parser("copies", help="does every file have its class's copies?")
    copies.add_argument(
        "--exclude",
        type=lambda text: [int(d) for d in text.split(",") if d],
        default=[],
        help="DEVID,...: copies there do not count",
    )
    args = parser.parse_args(argv)
    if getattr(args, "wait", 0) < 0:
        parser.error("--wait must be 0 or more")
    return args


COMMANDS = {
    "status": cmd_status,
    "mark-dead": cmd_mark_dead,
    "spread": cmd_spread,
    "retire": cmd_retire,
    "copies": cmd_copies,
}


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    out, err = out or sys.stdout, err or sys.stderr
    args = parse_args(argv, environ)
    admin = ClusterAdmin(args.trackers, timeout=args.timeout)
    try:
        COMMANDS[args.command](admin, args, out)
    except Refused as exc:
        print(f"clusterctl: refused: {exc}", file=err)
    except TrackerUnavailableError as exc:
        print(f"clusterctl: error: tracker unreachable: {exc}", file=err)
    except MogileFSError as exc:
        print(f"clusterctl: error: {exc}", file=err)
    except KeyboardInterrupt:
        print("clusterctl: interrupted", file=err)
        return 130
    else:
        return 0
    finally:
        admin.close()
    return 1


if __name__ == "__main__":
    sys.exit(main())
