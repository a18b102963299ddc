"""compose.yaml, read as ``docker compose`` would (anchors, ``<<`` merges, ``${VAR:-default}``).

The one place that says each service's settings: the static checks read it, and so does the
native stack (scripts/devstack), which runs the same services with the same environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yaml"
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@cache
def load() -> dict[str, Any]:
    """compose.yaml with anchors and ``<<`` merges resolved (not interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return load()["services"]


def interpolate(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Compose's ${VAR}, ${VAR:-default} and $$, with an empty environment by default."""
    environ = environ or {}

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return environ.get(match.group(1)) or match.group(2) or ""

    return _VARIABLE.sub(substitute, value)


def environment(service: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = services()[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(str(value), environ) for key, value in env.items()}


def networks(service: str) -> dict[str, dict[str, Any]]:
    nets = services()[service].get("networks") or {}
    if isinstance(nets, list):
        return {name: {} for name in nets}
    return {name: (config or {}) for name, config in nets.items()}


def static_ips(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Service name -> fixed IPv4 address on any network."""
    return {
        name: interpolate(config["ipv4_address"], environ)
        for name in services()
        for config in networks(name).values()
        if config.get("ipv4_address")
    }
