"""The native stack's services in compose's start order, each with compose's environment.

Fake trackers, storage nodes (Perlbal and a usage writer per host of mogile/cluster.toml),
memcached, bootstrap, app (app/start), media (app/start-media), perlbal; with
``config.trackers`` set, the trackers and storage nodes are somebody else's.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import compose_yaml as compose
from compose_yaml import ROOT

from .config import LOOPBACK, TRACKERS, StackConfig

TRACKER_STATE = "tracker-state.sqlite3"  # the fake trackers' shared state, in the var dir
BIN = Path(sys.executable).parent  # the environment make deps creates


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: tuple[str, int] | None = None  # ready once it accepts connections there
    cwd: Path = ROOT
    oneshot: bool = False  # runs to completion (exit 0) before the next one starts
    prepare: Callable[[], object] = lambda: None
    standby: bool = False  # defined, started only when asked (dev.py start NAME)


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something listens there. The site's servers open their port once they can
    answer (app/start migrates first), so this is each service's readiness check."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def native_environment(
    service: str, native: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, str]:
    """``service``'s compose environment with ``native`` (compose service -> native
    ``host:port``, or ``host``) in place of compose's addresses; ``environ`` interpolates.

    ``NAME:PORT`` of a compose service becomes where it listens natively, a bare ``NAME`` its
    host, ``0.0.0.0:PORT`` the service's own address, a fixed IP (``${BACKEND_NET}.10``) its
    service's host, ``/run/secrets/NAME`` the secret's file (as compose mounts it).
    """
    hosts = {name: address.rsplit(":", 1)[0] for name, address in native.items()}
    by_ip = {ip: hosts[name] for name, ip in compose.static_ips(environ).items() if name in hosts}
    names = "|".join(map(re.escape, sorted([*native, *by_ip], key=len, reverse=True)))
    # A name with an optional port, not inside a longer name, nor a URL scheme (memcached://).
    address = re.compile(rf"(?<![\w.-])({names})(?::(\d+))?(?![\w.-]|:\D|:$)")

    def substitute(match: re.Match[str]) -> str:
        name, port = match.groups()
        if name in by_ip:
            return by_ip[name] + (f":{port}" if port else "")
        return native[name] if port else hosts[name]

    out = {}
    for key, value in compose.environment(service, environ).items():
        if value.startswith("/run/secrets/"):
            secret = compose.load()["secrets"][value.removeprefix("/run/secrets/")]
            out[key] = str(ROOT / compose.interpolate(secret["file"], environ))
        elif value.startswith("0.0.0.0:"):
            out[key] = native[service]
        else:
            out[key] = address.sub(substitute, value)
    return out


def stack_services(c: StackConfig) -> list[Service]:
    var, native = c.var_dir.resolve(), c.native()

    def at(name: str) -> tuple[str, int]:
        return LOOPBACK, c.ports[name]

    # Compose's variables (SECRETS_DIR, SITE_HOSTS...) as the caller has them, as compose does.
    environ = {**os.environ, "MOGILEFS_DOMAIN": c.domain}

    def env(service: str, **extra: str) -> dict[str, str]:
        out = native_environment(service, native, environ)
        if "MOGILEFS_TRACKERS" in out:
            out["MOGILEFS_TRACKERS"] = ",".join(c.tracker_list)
        return out | extra

    out = []
    if not c.external:
        from cluster_description import load
        from django_mogilefs.testing import StorageNode

        for name in TRACKERS:
            argv = [str(BIN / "mogilefs-faketracker"), "--listen", native[name]]
            argv += ["--database", str(var / TRACKER_STATE), *c.tracker_args]
            out.append(Service(name, argv, port=at(name)))
        description = ROOT / "mogile" / "cluster.toml"
        described = {h.name for h in load(description, env("bootstrap")).hosts}
        # The description's optional host too, on standby: a machine to add (e2e).
        spare = env("bootstrap", MOGSTORED4_ADDRESS=native["mogstored4"])
        for host in load(description, spare).hosts:
            node = StorageNode(host.name, host.ip, host.port, host.devices, var / "storage")
            perlbal, usage = node.commands()
            on = {
                "cwd": node.workdir,
                "prepare": node.prepare,
                "standby": host.name not in described,
            }
            out.append(Service(host.name, perlbal, node.perlbal_env(), (host.ip, host.port), **on))
            out.append(Service(f"{host.name}-usage", usage, **on))
    if c.own_memcached:
        argv = ["memcached", *compose.services()["memcached"]["command"], "-U", "0"]
        argv += ["-l", LOOPBACK, "-p", str(c.ports["memcached"])]
        argv += ["-u", "root"] if os.geteuid() == 0 else []  # else memcached refuses root
        out.append(Service("memcached", argv, port=at("memcached")))
    bootstrap = [*compose.services()["bootstrap"]["command"]]
    # Somebody else's cluster: ensure the domain and classes, touch nothing else.
    bootstrap += ["--namespace-only"] if c.external else []
    out.append(Service("bootstrap", bootstrap, env("bootstrap"), oneshot=True))

    def site(service: str, **extra: str) -> dict[str, str]:
        out = env(service, APP_DIR=str(ROOT / "app"), DJANGO_STATIC_ROOT=str(var / "static"))
        # No MySQL natively: SQLite in the var dir.
        out.pop("DATABASE_PASSWORD_FILE", None)
        out["DATABASE_URL"] = f"sqlite:///{var / 'db.sqlite3'}"
        return out | ({"DJANGO_DEBUG": "true"} if c.debug else {}) | extra | dict(c.extra_env)

    app = site(
        "app",
        GUNICORN_WORKERS=str(c.site_workers),
        # One control socket per stack (its default is one per user), a quick Ctrl-C.
        GUNICORN_CMD_ARGS="--no-control-socket --graceful-timeout 5",
        PROMETHEUS_MULTIPROC_DIR=str(var / "prometheus"),
    )
    # Not gunicorn's directory: gunicorn deletes the files in its own when it starts.
    media = site("media", PROMETHEUS_MULTIPROC_DIR=str(var / "prometheus-media"))
    front = env(
        "perlbal",
        PERLBAL_LISTEN=native["perlbal"],
        PERLBAL_MGMT_LISTEN=native["perlbal-mgmt"],
        PERLBAL_NODEFILE=str(var / "perlbal-app-servers"),
        PERLBAL_MEDIA_NODEFILE=str(var / "perlbal-media-servers"),
    )
    if c.reproxy_cache_maxsize is not None:  # 0 turns Perlbal's reproxy cache off
        front["PERLBAL_REPROXY_CACHE_MAXSIZE"] = str(c.reproxy_cache_maxsize)
    entry = str(ROOT / "app" / "entrypoint")
    return [
        *out,
        Service("app", [entry, str(ROOT / "app/start")], app, at("app")),
        Service("media", [entry, str(ROOT / "app/start-media")], media, at("media")),
        Service("perlbal", [str(ROOT / "perlbal/start")], front, at("perlbal")),
    ]


def missing_packages() -> str | None:
    """scripts/system-deps.sh's message naming the missing runtime packages, if any."""
    if not shutil.which("dpkg-query"):  # not Debian: nothing to ask
        return None
    script = [str(ROOT / "scripts" / "system-deps.sh"), "dev"]
    done = subprocess.run(script, capture_output=True, text=True, check=False)
    return (done.stderr.strip() or f"{script[0]} failed") if done.returncode else None
