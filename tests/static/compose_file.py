"""Reading compose.yaml the way `docker compose` would, for the static checks."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
# CI's override (COMPOSE_FILE=compose.yaml:.ci/compose.fake-mogile.yaml in .ci/run).
CI_OVERRIDE = ROOT / ".ci" / "compose.fake-mogile.yaml"

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@cache
def load() -> dict[str, Any]:
    """compose.yaml with anchors and ``<<`` merges resolved (not interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return load()["services"]


@cache
def ci_override() -> dict[str, Any]:
    """The CI override file, anchors resolved."""
    return yaml.safe_load(CI_OVERRIDE.read_text())


def interpolate(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Compose's ${VAR}, ${VAR:-default} and $$, with an empty environment by default."""
    environ = environ or {}

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return environ.get(match.group(1)) or match.group(2) or ""

    return _VARIABLE.sub(substitute, value)


def environment(service: str) -> dict[str, str]:
    env = services()[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(str(value)) for key, value in env.items()}


def networks(service: str) -> dict[str, dict[str, Any]]:
    nets = services()[service].get("networks") or {}
    if isinstance(nets, list):
        return {name: {} for name in nets}
    return {name: (config or {}) for name, config in nets.items()}


def depends_on(service: str) -> dict[str, dict[str, Any]]:
    deps = services()[service].get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {} for name in deps}
    return deps


def is_one_shot(service: str) -> bool:
    return services()[service].get("restart", "no") == "no"


def in_default_profile(service: str) -> bool:
    return not services()[service].get("profiles")


def static_ips() -> dict[str, str]:
    """Service name -> fixed IPv4 address on any network."""
    return {
        name: interpolate(config["ipv4_address"])
        for name in services()
        for config in networks(name).values()
        if config.get("ipv4_address")
    }


def compose_resolver(address: str) -> str:
    """Resolve a service name the way Docker's DNS would (fixed addresses only)."""
    ips = static_ips()
    if address in ips:
        return ips[address]
    try:
        socket.inet_aton(address)
    except OSError:
        raise OSError(f"{address} has no fixed address in compose.yaml") from None
    return address
