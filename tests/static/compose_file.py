"""Reading compose.yaml the way `docker compose` would (compose_yaml), for the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from compose_yaml import (
    COMPOSE_FILE,
    ROOT,
    environment,
    interpolate,
    load,
    networks,
    services,
    static_ips,
)

__all__ = [
    "COMPOSE_FILE",
    "ROOT",
    "environment",
    "interpolate",
    "load",
    "networks",
    "services",
    "static_ips",
]
# CI's override (COMPOSE_FILE=compose.yaml:.ci/compose.fake-mogile.yaml in .ci/run).
CI_OVERRIDE = ROOT / ".ci" / "compose.fake-mogile.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def check_schema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema (installed beside this Python) on ``path``, with its built-in ``schema``."""
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@cache
def ci_override() -> dict[str, Any]:
    """The CI override file, anchors resolved."""
    return yaml.safe_load(CI_OVERRIDE.read_text())


def depends_on(service: str) -> dict[str, dict[str, Any]]:
    deps = services()[service].get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {} for name in deps}
    return deps


def is_one_shot(service: str) -> bool:
    return services()[service].get("restart", "no") == "no"


def in_default_profile(service: str) -> bool:
    return not services()[service].get("profiles")


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
