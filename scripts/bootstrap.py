#!/usr/bin/env python3
"""Make a MogileFS tracker match the cluster description, then wait until it can store files.

### Usage: .venv/bin/python scripts/bootstrap.py [--cluster FILE]
###            [--trackers HOST:PORT,...] [--wait SECONDS] [--dry-run]
### (.venv is what `make deps` installs: the client is the django-mogilefs package)

Creates the domain, classes, hosts (alive) and devices that are missing, updates
classes whose mindevcount/replpolicy/hashtype differ, and reports every other
difference without touching it. It never deletes anything, so it is safe to re-run:
the second run prints "nothing to do". Then it waits (``--wait``, 0 to skip) until
every described device is alive, observed writeable and has a known size (mb_total):
before that, the first replications of a fresh cluster stall for ~15 s.

Environment: MOGILEFS_TRACKERS (default 127.0.0.1:7001) and MOGILEFS_CLUSTER_FILE
(default mogile/cluster.toml), plus the ${VAR}s the description uses.
Exit status: 0 ready, 1 error (message on stderr), 2 bad command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from cluster_description import ClassSpec, ClusterDescription, DescriptionError, load

RUN = ".venv/bin/python scripts/bootstrap.py"


def import_hint(exc: ImportError, python: str) -> str:
    """What to do when django_mogilefs does not import: the fix depends on what is missing."""
    if exc.name == "django_mogilefs":
        return (
            f"cannot import django_mogilefs: {python} does not have the django-mogilefs "
            f"package; install it (make deps, or pip install .) and run {RUN}"
        )
    return (
        f"cannot import django_mogilefs: {exc} in {python}; install the project's "
        f"packages (make deps) and run it with that environment: {RUN}"
    )


try:
    from django_mogilefs.cluster import ClassInfo, ClusterAdmin, DeviceInfo, HostInfo
    from django_mogilefs.exceptions import (
        ClassExistsError,
        DeviceExistsError,
        DomainExistsError,
        HostExistsError,
        MogileFSError,
        TrackerUnavailableError,
        UnknownHostError,
        UnregisteredDomainError,
    )
except ImportError as exc:  # pragma: no cover - depends on how the script is started
    sys.exit(f"bootstrap: error: {import_hint(exc, sys.executable)}")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CLUSTER_FILE = ROOT / "mogile" / "cluster.toml"
DEFAULT_TRACKERS = "127.0.0.1:7001"
# A change made through one query worker can be invisible to the others for one
# monitor round (~2.5 s): "unknown host" right after creating the host is retried.
SETTLE_SECONDS = 10.0


class BootstrapError(Exception):
    """A problem bootstrap cannot fix by itself; the message says what to do."""


@dataclass(frozen=True)
class Change:
    summary: str
    apply: Callable[[ClusterAdmin], object]


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)  # reported and left alone
    conflicts: list[str] = field(default_factory=list)  # block every change
    notes: list[str] = field(default_factory=list)


# -- planning (pure: description + what the tracker reports -> plan) -----------------


def make_plan(
    desc: ClusterDescription,
    domains: Mapping[str, Mapping[str, ClassInfo]],
    hosts: Sequence[HostInfo],
    devices: Sequence[DeviceInfo],
    *,
    namespace_only: bool = False,
) -> Plan:
    """The changes that make the tracker match ``desc`` (only domain and classes if asked)."""
    plan = Plan()
    _plan_domain(plan, desc, domains)
    if namespace_only:
        return plan
    hostids = _plan_hosts(plan, desc, hosts)
    _plan_devices(plan, desc, devices, hostids, {h.hostid: h.name for h in hosts})
    for cls in desc.classes:
        if (
            cls.replpolicy
            and "MultipleHosts" in cls.replpolicy
            and cls.mindevcount > len(desc.hosts)
        ):
            plan.notes.append(
                f"class {cls.name} wants {cls.mindevcount} copies on different hosts but only "
                f"{len(desc.hosts)} host(s) are described: files will stay under-replicated"
            )
    return plan


def _plan_domain(
    plan: Plan, desc: ClusterDescription, domains: Mapping[str, Mapping[str, ClassInfo]]
) -> None:
    domain = desc.domain
    current = domains.get(domain)
    if current is None:
        plan.changes.append(Change(f"create domain {domain}", lambda a: a.create_domain(domain)))
        current = {}
    for cls in desc.classes:
        info = current.get(cls.name)
        if info is None and cls.name != "default":
            plan.changes.append(_class_change("create", domain, cls, _class_settings(cls)))
            continue
        differences = _class_differences(cls, info)
        if differences:
            plan.changes.append(_class_change("update", domain, cls, ", ".join(differences)))
            if any(d.startswith("replpolicy") for d in differences):
                plan.notes.append(
                    f"class {cls.name}: a new replpolicy applies to existing files only "
                    "after an fsck (mogadm fsck start)"
                )
    described = {c.name for c in desc.classes} | {"default"}
    for name in sorted(set(current) - described):
        plan.drift.append(f"class {domain}/{name} is on the tracker but not in the description")


def _class_settings(cls: ClassSpec) -> str:
    settings = [f"mindevcount={cls.mindevcount}"]
    settings += [f"replpolicy={cls.replpolicy}"] if cls.replpolicy else []
    settings += [f"hashtype={cls.hashtype}"] if cls.hashtype else []
    return ", ".join(settings)


def _class_differences(cls: ClassSpec, info: ClassInfo | None) -> list[str]:
    if info is None:  # the implicit "default" class: compare against its defaults
        info = ClassInfo("default", 2, "MultipleHosts()", "NONE")
    differences = []
    if cls.mindevcount != info.mindevcount:
        differences.append(f"mindevcount {info.mindevcount} -> {cls.mindevcount}")
    if cls.replpolicy and _squash(cls.replpolicy) != _squash(info.replpolicy or "MultipleHosts()"):
        differences.append(f"replpolicy {info.replpolicy or '(default)'} -> {cls.replpolicy}")
    if cls.hashtype and cls.hashtype != (info.hashtype or "NONE").upper():
        differences.append(f"hashtype {info.hashtype or 'NONE'} -> {cls.hashtype}")
    return differences


def _squash(text: str) -> str:
    return "".join(text.split())


def _class_change(verb: str, domain: str, cls: ClassSpec, detail: str) -> Change:
    def apply(admin: ClusterAdmin) -> None:
        method = admin.create_class if verb == "create" else admin.update_class
        method(domain, cls.name, cls.mindevcount, replpolicy=cls.replpolicy, hashtype=cls.hashtype)

    return Change(f"{verb} class {domain}/{cls.name} ({detail})", apply)


def _plan_hosts(plan: Plan, desc: ClusterDescription, hosts: Sequence[HostInfo]) -> dict[str, int]:
    """Plan host changes; return the tracker's hostid of every described host that exists."""
    by_name = {h.name: h for h in hosts}
    by_ip = {h.ip: h for h in hosts}
    hostids = {}
    for spec in desc.hosts:
        current = by_name.get(spec.name)
        other = by_ip.get(spec.ip)
        if other is not None and other.name != spec.name:
            plan.conflicts.append(
                f"host {spec.name}: IP {spec.ip} already belongs to host {other.name} "
                "on the tracker (one host per IP)"
            )
            continue
        if current is None:
            plan.changes.append(
                Change(
                    f"create host {spec.name} {spec.ip}:{spec.port} (alive)",
                    lambda a, s=spec: a.create_host(s.name, s.ip, s.port, status="alive"),
                )
            )
            continue
        hostids[spec.name] = current.hostid
        if (current.ip, current.http_port) != (spec.ip, spec.port):
            plan.changes.append(
                Change(
                    f"update host {spec.name}: {current.ip}:{current.http_port} "
                    f"-> {spec.ip}:{spec.port}",
                    lambda a, s=spec: a.update_host(s.name, ip=s.ip, port=s.port),
                )
            )
        if current.status != "alive":
            plan.drift.append(
                f"host {spec.name} is '{current.status}' on the tracker, not alive "
                f"(mogadm host mark {spec.name} alive, if that is intended)"
            )
    described = {h.name for h in desc.hosts}
    for host in hosts:
        if host.name in described:
            continue
        if host.status == "dead":
            plan.notes.append(f"host {host.name} ({host.ip}) is dead (retired)")
        else:
            plan.drift.append(
                f"host {host.name} ({host.ip}:{host.http_port}, {host.status}) is on the "
                "tracker but not in the description"
            )
    return hostids


def _plan_devices(
    plan: Plan,
    desc: ClusterDescription,
    devices: Sequence[DeviceInfo],
    hostids: Mapping[str, int],
    hostnames: Mapping[int, str],
) -> None:
    by_devid = {d.devid: d for d in devices}
    for spec in desc.hosts:
        for devid in spec.devices:
            current = by_devid.get(devid)
            if current is None:
                plan.changes.append(
                    Change(
                        f"create device {devid} on host {spec.name}",
                        lambda a, d=devid, h=spec.name: a.create_device(d, h, state="alive"),
                    )
                )
                continue
            if hostids.get(spec.name) != current.hostid:
                owner = hostnames.get(current.hostid, f"hostid {current.hostid}")
                plan.conflicts.append(
                    f"device {devid} belongs to host {owner} on the tracker, not to "
                    f"{spec.name} (device ids are never reused: pick a new one)"
                )
            elif current.status == "dead":
                plan.drift.append(
                    f"device {devid} on {spec.name} is dead: its files were copied elsewhere "
                    "and it stays dead (a device id is never reused); remove it from the "
                    "description, and give a replacement disk a new id"
                )
            elif current.status != "alive":
                plan.drift.append(
                    f"device {devid} on {spec.name} is '{current.status}' on the tracker, "
                    f"not alive (mogadm device mark {spec.name} {devid} alive, if intended)"
                )
    described = set(desc.devids)
    for device in devices:
        if device.devid not in described:
            owner = hostnames.get(device.hostid, f"hostid {device.hostid}")
            if device.status == "dead":
                plan.notes.append(f"device {device.devid} on {owner} is dead (retired)")
                continue
            plan.drift.append(
                f"device {device.devid} on {owner} ({device.status}) is on the tracker "
                "but not in the description"
            )


# -- talking to the tracker ------------------------------------------------------------


def apply_change(
    admin: ClusterAdmin,
    change: Change,
    settle: float = SETTLE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Apply one change; return "done" or "already there" (someone else made it)."""
    deadline = time.monotonic() + settle
    while True:
        try:
            change.apply(admin)
            return "done"
        except (DomainExistsError, ClassExistsError, DeviceExistsError):
            return "already there"
        except HostExistsError as exc:
            if exc.code == "dup":
                raise BootstrapError(f"{change.summary}: the IP is used by another host") from exc
            return "already there"
        except (UnknownHostError, UnregisteredDomainError):
            # Created a moment ago through another query worker: not visible here yet.
            if time.monotonic() >= deadline:
                raise
            sleep(0.5)


def wait_for_a_tracker(
    admin: ClusterAdmin,
    trackers: str,
    timeout: float,
    poll: float,
    out: TextIO,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until a tracker answers (one started with the trackers may come first), at most
    ``timeout`` seconds; then the tracker's error is raised as it is."""
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            admin.pool.request("noop")
            return
        except TrackerUnavailableError:
            if time.monotonic() >= deadline:
                raise
            if not said:
                print(
                    f"Waiting up to {timeout:g}s for a tracker of {trackers}...",
                    file=out,
                    flush=True,
                )
                said = True
            sleep(max(poll, 1.0))


def wait_until_ready(
    admin: ClusterAdmin,
    desc: ClusterDescription,
    timeout: float,
    poll: float,
    out: TextIO,
    sleep: Callable[[float], None] = time.sleep,
) -> list[DeviceInfo]:
    """Poll get_devices until every described device is ready, or raise after ``timeout``.

    A dead device is left out (it never comes back: the plan reports it); if every
    described device is dead, there is nothing to wait for and that is an error.
    """
    dead = {d.devid for d in admin.get_devices() if d.status == "dead"}
    wanted = [devid for devid in desc.devids if devid not in dead]
    if not wanted:
        raise BootstrapError(f"every described device ({_ids(desc.devids)}) is dead")
    print(
        f"Waiting up to {timeout:g}s for device(s) {_ids(wanted)} to be alive, "
        "writeable and sized...",
        file=out,
        flush=True,
    )
    started = time.monotonic()
    problem = "no answer yet"
    while True:
        try:
            devices = {d.devid: d for d in admin.get_devices()}
        except TrackerUnavailableError as exc:
            problem = str(exc)
        else:
            missing = [
                _device_state(devid, devices.get(devid))
                for devid in wanted
                if devices.get(devid) is None or not devices[devid].ready
            ]
            if not missing:
                elapsed = time.monotonic() - started
                print(f"Ready after {elapsed:.1f}s: device(s) {_ids(wanted)}.", file=out)
                return [devices[devid] for devid in wanted]
            problem = "; ".join(missing)
        if time.monotonic() - started >= timeout:
            raise BootstrapError(f"not ready after {timeout:g}s: {problem}")
        sleep(poll)


def _device_state(devid: int, device: DeviceInfo | None) -> str:
    if device is None:
        return f"device {devid} is unknown to the tracker"
    size = "size unknown" if device.mb_total is None else f"{device.mb_total} MB"
    observed = device.observed_state or "not observed"
    return f"device {devid}: {device.status}, {observed}, {size}"


def _ids(devids: Sequence[int]) -> str:
    return ", ".join(str(d) for d in devids)


# -- command line ----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bootstrap.py",
        description="Make a MogileFS tracker match the cluster description (never deletes).",
    )
    parser.add_argument(
        "--cluster",
        "-c",
        type=Path,
        default=Path(environ.get("MOGILEFS_CLUSTER_FILE") or DEFAULT_CLUSTER_FILE),
        help="cluster description (env MOGILEFS_CLUSTER_FILE; default: %(default)s)",
    )
    parser.add_argument(
        "--trackers",
        default=environ.get("MOGILEFS_TRACKERS") or DEFAULT_TRACKERS,
        help="comma-separated host:port (env MOGILEFS_TRACKERS; default: %(default)s)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="wait at most this long for the devices to be ready; 0: do not wait (%(default)s)",
    )
    parser.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="per tracker command; admin commands can take 2.5 s (%(default)s)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    parser.add_argument(
        "--namespace-only",
        action="store_true",
        help="only the domain and classes: leave hosts and devices (an existing cluster's) alone",
    )
    args = parser.parse_args(argv)
    if args.wait < 0:
        parser.error("--wait must be 0 or more")
    return args


def print_plan(plan: Plan, out: TextIO) -> None:
    if plan.changes:
        print("Plan:", file=out)
        for change in plan.changes:
            print(f"  + {change.summary}", file=out)
    else:
        print("Plan: nothing to do (the tracker matches the description).", file=out)
    sections = (
        ("Drift (reported, left alone):", plan.drift, "~"),
        ("Notes:", plan.notes, "-"),
        ("Conflicts (fix by hand; nothing was changed):", plan.conflicts, "!"),
    )
    for title, lines, mark in sections:
        if lines:
            print(title, file=out)
            for line in lines:
                print(f"  {mark} {line}", file=out)


def run(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO) -> None:
    desc = load(args.cluster, environ)
    print(
        f"bootstrap: tracker(s) {args.trackers}; {args.cluster}: domain {desc.domain}, "
        f"{len(desc.classes)} class(es), {len(desc.hosts)} host(s), device(s) {_ids(desc.devids)}",
        file=out,
    )
    admin = ClusterAdmin(args.trackers, timeout=args.timeout)
    try:
        wait_for_a_tracker(admin, args.trackers, args.wait, args.poll, out)
        if args.namespace_only:
            plan = make_plan(desc, admin.get_domains(), [], [], namespace_only=True)
        else:
            plan = make_plan(desc, admin.get_domains(), admin.get_hosts(), admin.get_devices())
        print_plan(plan, out)
        if plan.conflicts:
            raise BootstrapError(
                f"{len(plan.conflicts)} conflict(s) between tracker and description"
            )
        if args.dry_run:
            return
        for change in plan.changes:
            if apply_change(admin, change) != "done":
                print(f"  (already there: {change.summary})", file=out, flush=True)
        if plan.changes:
            print(f"Applied {len(plan.changes)} change(s).", file=out)
        if args.wait > 0 and not args.namespace_only:
            wait_until_ready(admin, desc, args.wait, args.poll, out)
    finally:
        admin.close()


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    out = out or sys.stdout
    err = err or sys.stderr
    args = parse_args(argv, environ)
    # The tracker client logs failovers; keep them in the same voice as our messages.
    logging.basicConfig(format="bootstrap: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        run(args, environ, out)
    except DescriptionError as exc:
        print(f"bootstrap: error: bad cluster description {exc}", file=err)
    except TrackerUnavailableError as exc:
        print(f"bootstrap: error: tracker unreachable: {exc}", file=err)
    except (BootstrapError, MogileFSError, ValueError) as exc:
        print(f"bootstrap: error: {exc}", file=err)
    else:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
