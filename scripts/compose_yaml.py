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
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(KeyError):
    """A ``${VAR:?message}`` whose variable is unset or empty."""


@cache
def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """A compose file with anchors and ``<<`` merges resolved (not interpolated)."""
    return yaml.safe_load(path.read_text())


def services() -> dict[str, dict[str, Any]]:
    return load()["services"]


def interpolate(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ (empty environment by default)."""
    environ = environ or {}

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        found = environ.get(name)
        if operator in ("?", ":?") and not (found if operator == ":?" else found is not None):
            raise MissingVariable(f"{name}: {argument}")
        if operator in ("-", ":-") and not (found if operator == ":-" else found is not None):
            return argument
        return found or ""

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
