"""Where each part of the native stack listens, and where it keeps its files."""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .net import free_port, port_free

ROOT = Path(__file__).resolve().parents[2]  # the repository
LOOPBACK = "127.0.0.1"
# The cluster description's native layout: one loopback address per storage node.
NODE_ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
NODE_PORT = 7500  # fixed by mogile/cluster.toml


@dataclass(frozen=True)
class StackConfig:
    """The native stack's addresses. The defaults are ``make dev``'s.

    ``trackers`` set means: use that existing MogileFS cluster, start no fake
    tracker and no storage nodes, and only make sure the domain and classes exist.
    """

    var_dir: Path = ROOT / "var" / "dev"
    domain: str = "avatars"
    trackers: tuple[str, ...] = ()
    # Two fake trackers on one state file, as compose runs two trackers on one database.
    tracker_ports: tuple[int, ...] = (7001, 7002)
    node_addresses: tuple[str, ...] = NODE_ADDRESSES
    node_port: int = NODE_PORT
    memcached_port: int = 11211
    site_port: int = 8000
    media_port: int = 8001
    front_port: int = 8080
    mgmt_port: int = 16000
    debug: bool = False
    site_workers: int = 2
    # Extra fake tracker options, e.g. a shorter --test-write-interval for the tests.
    tracker_args: tuple[str, ...] = ()
    # None: perlbal/start's default; 0 turns Perlbal's reproxy cache off.
    reproxy_cache_maxsize: int | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def external(self) -> bool:
        return bool(self.trackers)

    @property
    def tracker_list(self) -> list[str]:
        return list(self.trackers) or [f"{LOOPBACK}:{port}" for port in self.tracker_ports]

    @property
    def site_url(self) -> str:
        """Where users go: Perlbal in front."""
        return f"http://{LOOPBACK}:{self.front_port}"

    @property
    def app_url(self) -> str:
        """gunicorn itself, behind Perlbal."""
        return f"http://{LOOPBACK}:{self.site_port}"

    @property
    def media_tier_url(self) -> str:
        """The media tier (granian), behind Perlbal's media service."""
        return f"http://{LOOPBACK}:{self.media_port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides) -> StackConfig:
        """``make dev``'s layout, or an existing cluster's when MOGILEFS_TRACKERS is set."""
        trackers = tuple(
            t.strip() for t in environ.get("MOGILEFS_TRACKERS", "").split(",") if t.strip()
        )
        domain = environ.get("MOGILEFS_DOMAIN") or "avatars"
        return replace(replace(cls(), trackers=trackers, domain=domain), **overrides)

    @classmethod
    def isolated(cls, var_dir: Path, **overrides) -> StackConfig:
        """Free ports everywhere and storage nodes on a loopback block of their own.

        Lets the e2e suite (or the bench) run next to a ``make dev`` stack. The node
        port is fixed by the cluster description, so each run takes three fresh
        addresses 127.x.y.1-3 instead of a fresh port.
        """
        picked: list[int] = []
        for _ in range(7):
            picked.append(free_port(avoid=set(picked)))
        tracker1, tracker2, memcached, site, media, front, mgmt = picked
        chosen = replace(
            cls(var_dir=var_dir),
            tracker_ports=(tracker1, tracker2),
            memcached_port=memcached,
            site_port=site,
            media_port=media,
            front_port=front,
            mgmt_port=mgmt,
            node_addresses=free_node_block(NODE_PORT),
        )
        return replace(chosen, **overrides)


def free_node_block(port: int, tries: int = 50) -> tuple[str, ...]:
    """Three addresses on which ``port`` is free: 127.0.0.1-3 if they are, else 127.x.y.1-3."""
    if all(port_free(address, port) for address in NODE_ADDRESSES):
        return NODE_ADDRESSES
    rng = random.Random(secrets.randbits(32))
    for _ in range(tries):
        prefix = f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}"
        block = (f"{prefix}.1", f"{prefix}.2", f"{prefix}.3")
        if all(port_free(address, port) for address in block):
            return block
    raise RuntimeError(f"no loopback block with port {port} free")
