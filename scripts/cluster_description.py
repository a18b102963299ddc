"""The declarative MogileFS cluster description (``mogile/cluster.toml``).

:func:`load` reads the TOML file, fills ``${VAR}`` / ``${VAR:-default}`` from the
environment, checks every field and resolves host names to IPv4 addresses. Any
problem raises :class:`DescriptionError` naming the file and the offending key.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_HOSTNAME = 40  # host.hostname is VARCHAR(40) in the tracker's schema

Resolver = Callable[[str], str]


class DescriptionError(Exception):
    """The description file is missing, is not valid TOML or does not describe a cluster."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class ClassSpec:
    name: str
    mindevcount: int
    replpolicy: str | None = None
    hashtype: str | None = None


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str  # as written (after ${VAR} substitution)
    ip: str  # resolved IPv4 address
    port: int
    devices: tuple[int, ...]


@dataclass(frozen=True)
class ClusterDescription:
    domain: str
    classes: tuple[ClassSpec, ...]
    hosts: tuple[HostSpec, ...]

    @property
    def devids(self) -> list[int]:
        return sorted(devid for host in self.hosts for devid in host.devices)


def resolve_ipv4(address: str) -> str:
    """An IPv4 literal as it is; a name through the system resolver (first IPv4 answer)."""
    try:
        return str(ipaddress.IPv4Address(address))
    except ValueError:
        pass
    infos = socket.getaddrinfo(address, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


def load(
    path: Path | str,
    environ: Mapping[str, str],
    resolve: Resolver = resolve_ipv4,
) -> ClusterDescription:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DescriptionError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DescriptionError(path, f"cannot read the file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DescriptionError(path, f"invalid TOML: {exc}") from None
    return _Parser(path, environ, resolve).cluster(raw)


class _Parser:
    def __init__(self, path: Path, environ: Mapping[str, str], resolve: Resolver) -> None:
        self.path = path
        self.environ = environ
        self.resolve = resolve

    def error(self, message: str) -> DescriptionError:
        return DescriptionError(self.path, message)

    def cluster(self, raw: dict[str, Any]) -> ClusterDescription:
        self.only_keys(raw, "the file", {"domain", "classes", "hosts"})
        domain = self.table(raw, "domain")
        self.only_keys(domain, "[domain]", {"name"})
        classes = tuple(
            self.class_spec(item, f"classes[{i}]")
            for i, item in enumerate(self.array(raw, "classes"))
        )
        specs = [
            self.host_spec(item, f"hosts[{i}]") for i, item in enumerate(self.array(raw, "hosts"))
        ]
        hosts = tuple(spec for spec in specs if spec is not None)
        if not hosts:
            raise self.error("describe at least one [[hosts]] entry")
        self.unique([c.name for c in classes], "class name")
        self.unique([h.name for h in hosts], "host name")
        self.unique([h.ip for h in hosts], "host address (the tracker allows one host per IP)")
        self.unique([d for h in hosts for d in h.devices], "device id")
        return ClusterDescription(self.name(domain, "domain.name"), classes, hosts)

    def class_spec(self, item: Any, where: str) -> ClassSpec:
        if not isinstance(item, dict):
            raise self.error(f"{where} must be a table ([[classes]])")
        self.only_keys(item, where, {"name", "mindevcount", "replpolicy", "hashtype"})
        mindevcount = self.integer(item, f"{where}.mindevcount", "mindevcount", minimum=1)
        replpolicy = self.optional_string(item, f"{where}.replpolicy", "replpolicy")
        hashtype = self.optional_string(item, f"{where}.hashtype", "hashtype")
        if hashtype is not None:
            hashtype = hashtype.upper()
            if hashtype not in ("MD5", "NONE"):
                raise self.error(f"{where}.hashtype must be MD5 or NONE, not {hashtype!r}")
        return ClassSpec(self.name(item, f"{where}.name"), mindevcount, replpolicy, hashtype)

    def host_spec(self, item: Any, where: str) -> HostSpec | None:
        """The host, or None for an ``optional`` host whose address is empty (a machine
        this deployment does not have now)."""
        if not isinstance(item, dict):
            raise self.error(f"{where} must be a table ([[hosts]])")
        self.only_keys(item, where, {"name", "address", "port", "devices", "optional"})
        name = self.name(item, f"{where}.name")
        if len(name) > MAX_HOSTNAME:
            raise self.error(f"{where}.name is longer than {MAX_HOSTNAME} characters")
        optional = item.get("optional", False)
        if not isinstance(optional, bool):
            raise self.error(f"{where}.optional must be true or false")
        if optional and not self.interpolate(str(item.get("address", "")), where).strip():
            return None
        address = self.string(item, f"{where}.address", "address")
        port = self.integer(item, f"{where}.port", "port", minimum=1)
        if port > 65535:
            raise self.error(f"{where}.port must be at most 65535")
        devices = item.get("devices")
        if (
            not isinstance(devices, list)
            or not devices
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in devices)
        ):
            raise self.error(f"{where}.devices must be a non-empty list of positive device ids")
        try:
            ip = self.resolve(address)
        except (OSError, UnicodeError) as exc:
            raise self.error(f"{where}.address: cannot resolve {address!r} ({exc})") from None
        return HostSpec(name, address, ip, port, tuple(devices))

    # -- field helpers -------------------------------------------------------------

    def table(self, raw: dict[str, Any], key: str) -> dict[str, Any]:
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.error(f"missing [{key}] table")
        return value

    def array(self, raw: dict[str, Any], key: str) -> list[Any]:
        value = raw.get(key, [])
        if not isinstance(value, list):
            raise self.error(f"{key} must be an array of tables ([[{key}]])")
        return value

    def only_keys(self, raw: dict[str, Any], where: str, allowed: set[str]) -> None:
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise self.error(
                f"unknown key(s) in {where}: {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(allowed))})"
            )

    def string(self, raw: dict[str, Any], where: str, key: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str):
            raise self.error(f"{where} must be a string")
        value = self.interpolate(value, where).strip()
        if not value:
            raise self.error(f"{where} is empty")
        return value

    def optional_string(self, raw: dict[str, Any], where: str, key: str) -> str | None:
        return self.string(raw, where, key) if key in raw else None

    def name(self, raw: dict[str, Any], where: str) -> str:
        value = self.string(raw, where, where.rsplit(".", 1)[-1])
        if not _NAME.match(value):
            raise self.error(f"{where} {value!r} may only contain letters, digits, '_', '.', '-'")
        return value

    def integer(self, raw: dict[str, Any], where: str, key: str, *, minimum: int) -> int:
        value = raw.get(key)
        if isinstance(value, str):
            value = self.interpolate(value, where).strip()
            value = int(value) if value.isdigit() else value
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(f"{where} must be an integer")
        if value < minimum:
            raise self.error(f"{where} must be at least {minimum}")
        return value

    def interpolate(self, value: str, where: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            current = self.environ.get(name, "")
            if current:
                return current
            if default is not None:
                return default
            raise self.error(f"{where}: environment variable {name} is not set (no default)")

        return _VARIABLE.sub(substitute, value)

    def unique(self, values: list[Any], what: str) -> None:
        seen: set[Any] = set()
        for value in values:
            if value in seen:
                raise self.error(f"duplicate {what}: {value}")
            seen.add(value)
