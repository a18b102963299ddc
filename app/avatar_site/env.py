"""Reading settings from the environment (12-factor), with no extra packages.

Every function takes the raw string (or ``None`` when the variable is unset) so
that it can be tested without touching ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}

SIZE_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
    "GIB": 1024**3,
}


def get(name: str, default: str | None = None) -> str | None:
    """The variable's value, or ``default`` when it is unset or blank."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def parse_bool(value: str | None, default: bool, *, name: str = "value") -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, on/off)")


def parse_int(value: str | None, default: int, *, name: str = "value", minimum: int = 0) -> int:
    if value is None:
        return default
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}")
    return number


def parse_size(value: str | None, default: int, *, name: str = "value") -> int:
    """Bytes from ``5242880``, ``5M``, ``5MB`` or ``5MiB`` (binary units)."""
    if value is None:
        return default
    text = value.strip().upper().replace(" ", "").replace("_", "")
    digits = text.rstrip("BKMGI")
    unit = text[len(digits) :]
    if not digits or unit not in SIZE_UNITS:
        raise ImproperlyConfigured(f"{name}={value!r} is not a size (e.g. 5242880, 5M, 5MB)")
    try:
        number = float(digits)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a size") from None
    size = int(number * SIZE_UNITS[unit])
    if size <= 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be positive")
    return size


def parse_list(value: str | None, default: list[str]) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_trackers(value: str | None, default: list[str]) -> list[str]:
    """``host:port`` items, comma-separated; each is checked for a numeric port."""
    trackers = parse_list(value, default)
    if not trackers:
        raise ImproperlyConfigured("MOGILEFS_TRACKERS is empty")
    for tracker in trackers:
        host, sep, port = tracker.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ImproperlyConfigured(
                f"MOGILEFS_TRACKERS item {tracker!r} is not host:port (e.g. tracker:7001)"
            )
    return trackers


def parse_database_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    """A Django ``DATABASES`` entry from a URL.

    * ``sqlite:///var/db.sqlite3`` -- relative to ``base_dir``;
      ``sqlite:////abs/path.sqlite3`` -- absolute; ``sqlite://:memory:`` -- in memory.
    * ``mysql://user:password@host:3306/name?charset=utf8mb4`` -- needs ``mysqlclient``.
    * ``postgres://`` / ``postgresql://`` -- needs ``psycopg``.

    Query parameters become ``OPTIONS``; user and password are percent-decoded.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc == ":memory:" or parts.path in ("/:memory:", ""):
            name = ":memory:"
        else:
            # sqlite:///relative (three slashes) or sqlite:////absolute (four).
            raw = parts.netloc + parts.path
            path = Path(unquote(raw[1:] if raw.startswith("/") else raw))
            name = str(path if path.is_absolute() else base_dir / path)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}

    engines = {
        "mysql": "django.db.backends.mysql",
        "postgres": "django.db.backends.postgresql",
        "postgresql": "django.db.backends.postgresql",
    }
    if scheme not in engines:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported (sqlite, mysql, postgres)"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL has no database name (the path part)")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured("DATABASE_URL has an invalid port") from None
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    if scheme == "mysql":
        options.setdefault("charset", "utf8mb4")
        # Strict mode, as Django's mysql.W002 check asks for.
        options.setdefault("init_command", "SET sql_mode='STRICT_TRANS_TABLES'")
    return {
        "ENGINE": engines[scheme],
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port) if port else "",
        "OPTIONS": options,
    }


def parse_cache(cache_url: str | None, memcached_location: str | None) -> dict[str, Any]:
    """The ``default`` cache: memcached (pymemcache) when configured, else local memory.

    ``CACHE_URL`` may be ``memcached://host:11211[,host2:11211]`` (``pymemcache://``
    too), ``locmem://`` or ``dummy://``. ``MEMCACHED_LOCATION`` is the shorthand
    ``host:11211[,host2:11211]``. ``CACHE_URL`` wins when both are set.
    """
    if cache_url:
        scheme, sep, rest = cache_url.partition("://")
        scheme = scheme.lower()
        if not sep:
            raise ImproperlyConfigured(f"CACHE_URL={cache_url!r} has no scheme (memcached://)")
        if scheme in ("memcached", "memcache", "pymemcache"):
            locations = parse_list(rest.rstrip("/"), [])
            if not locations:
                raise ImproperlyConfigured(f"CACHE_URL={cache_url!r} names no memcached server")
            return _memcached(locations)
        if scheme == "locmem":
            return _locmem()
        if scheme == "dummy":
            return {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
        raise ImproperlyConfigured(
            f"CACHE_URL scheme {scheme!r} is not supported (memcached, locmem, dummy)"
        )
    if memcached_location:
        return _memcached(parse_list(memcached_location, []))
    return _locmem()


def _memcached(locations: list[str]) -> dict[str, Any]:
    return {
        "BACKEND": "avatar_site.cache.KeepAlivePyMemcacheCache",  # one connection per thread
        "LOCATION": locations if len(locations) > 1 else locations[0],
        "KEY_PREFIX": "avatar_site",
        "OPTIONS": {
            # Never let a dead memcached take the site down: misses instead of errors.
            "no_delay": True,
            "ignore_exc": True,
            "connect_timeout": 1,
            "timeout": 1,
        },
    }


def _locmem() -> dict[str, Any]:
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
