"""Where each part of the native stack listens (by compose's service names), and its var dir."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from compose_yaml import ROOT
from django_mogilefs.testing import free_port

LOOPBACK = "127.0.0.1"
# mogile/cluster.toml's native addresses; the fourth is its optional host's (a spare).
NODE_ADDRESSES, NODE_PORT = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"), 7500
PORTS = {"mogilefsd": 7001, "mogilefsd2": 7002, "memcached": 11211, "app": 8000, "media": 8001}
PORTS |= {"perlbal": 8080, "perlbal-mgmt": 16000}
TRACKERS = ("mogilefsd", "mogilefsd2")  # two on one database (--database), as in compose


class StackError(RuntimeError):
    """The stack could not start or be reached (the message says which part and why)."""


@dataclass(frozen=True)
class StackConfig:
    """The native stack's layout; the defaults are ``make dev``'s. ``trackers`` set: use
    that MogileFS cluster, with no fake tracker nor storage nodes of our own."""

    var_dir: Path = ROOT / "var" / "dev"
    domain: str = "avatars"
    trackers: tuple[str, ...] = ()
    ports: Mapping[str, int] = field(default_factory=lambda: dict(PORTS))
    node_addresses: tuple[str, ...] = NODE_ADDRESSES
    own_memcached: bool = True  # False: one already answers on its port (Debian's)
    debug: bool = False
    site_workers: int = 2
    tracker_args: tuple[str, ...] = ()  # e.g. a shorter --test-write-interval for the tests
    reproxy_cache_maxsize: int | None = None  # None: perlbal/start's default
    extra_env: Mapping[str, str] = field(default_factory=dict)

    external = property(lambda self: bool(self.trackers))
    site_url = property(lambda self: self.url("perlbal"))  # where users go
    app_url = property(lambda self: self.url("app"))  # gunicorn, behind Perlbal
    media_tier_url = property(lambda self: self.url("media"))  # granian, behind Perlbal

    def url(self, service: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[service]}"

    @property
    def tracker_list(self) -> list[str]:
        return list(self.trackers) or [f"{LOOPBACK}:{self.ports[t]}" for t in TRACKERS]

    def native(self) -> dict[str, str]:
        """compose service -> where it listens here (a storage node: its address)."""
        out = {name: f"{LOOPBACK}:{port}" for name, port in self.ports.items()}
        return out | {f"mogstored{i}": ip for i, ip in enumerate(self.node_addresses, start=1)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides) -> StackConfig:
        """``make dev``'s layout, or an existing cluster's when MOGILEFS_TRACKERS is set."""
        trackers = tuple(t.strip() for t in environ.get("MOGILEFS_TRACKERS", "").split(","))
        domain = environ.get("MOGILEFS_DOMAIN") or "avatars"
        return cls(trackers=tuple(filter(None, trackers)), domain=domain, **overrides)

    @classmethod
    def isolated(cls, var_dir: Path, **overrides) -> StackConfig:
        """Free ports, and storage nodes on loopback addresses of their own (the node port
        is fixed by the cluster description): runs next to ``make dev``."""
        ports: set[int] = set()
        while len(ports) < len(PORTS):
            ports.add(free_port((LOOPBACK,)))
        chosen = dict(zip(PORTS, sorted(ports), strict=True))
        return cls(var_dir=var_dir, ports=chosen, node_addresses=free_node_block(), **overrides)

    def save(self) -> None:
        """Into the var dir, for ``dev.py status|stop|start|down`` from other shells."""
        data = dataclasses.asdict(self) | {"var_dir": str(self.var_dir)}
        (self.var_dir / "stack.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def saved(cls, var_dir: Path) -> StackConfig | None:
        try:
            data = json.loads((var_dir / "stack.json").read_text())
        except (OSError, ValueError):
            return None
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data | {"var_dir": Path(data["var_dir"])})


def free_node_block(tries: int = 50) -> tuple[str, ...]:
    """Addresses with nothing on the node port: 127.0.0.1-4 if so, else 127.x.y.1-4."""
    from .services import tcp_open

    block = NODE_ADDRESSES
    for _ in range(tries):
        if not any(tcp_open(address, NODE_PORT) for address in block):
            return block
        prefix = f"127.{random.randrange(1, 255)}.{random.randrange(256)}"
        block = tuple(f"{prefix}.{n}" for n in range(1, len(NODE_ADDRESSES) + 1))
    raise StackError(f"no loopback block with port {NODE_PORT} free")
