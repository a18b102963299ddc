"""The storage's options, typed and checked once: :class:`Config`.

``MogileFSStorage.get_default_settings()`` gives every option's value from the
settings (or its default); the storage's ``OPTIONS`` replace them; :meth:`Config.of`
checks and converts the result. Everything else in the package (the serve view, the
WSGI fast path, ``/metrics``) reads a storage's ``config``, never the settings.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .tracker import parse_trackers

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Config:
    """Every option of a ``MogileFSStorage`` (``storage.config``), checked.

    The public attributes other code may rely on: ``trackers`` (``"host:port"``
    strings), ``domain``, ``mogile_class`` (``None``: the domain's ``default``),
    ``timeout`` and ``connect_timeout`` (seconds, for a tracker's answer and for a
    connect), ``media_url`` (ends with ``/``) and ``serve_prefix``. The table in the
    package README says what each option means.
    """

    trackers: tuple[str, ...]
    domain: str
    mogile_class: str | None
    media_url: str
    serve_with_perlbal: bool
    allow_overwrite: bool
    timeout: float
    connect_timeout: float
    http_timeout: tuple[float, float]
    pathcount: int
    path_cache: str
    path_cache_timeout: float
    local_path_cache_timeout: float
    cache_control: str
    reproxy_cache_for: int
    reproxy_from: tuple[Network, ...]
    metrics_path: str
    metrics_allow_from: tuple[Network, ...]
    metrics_cache_seconds: float

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Config:
        """Check and convert ``values`` (every option); ImproperlyConfigured names a bad one."""
        v = dict(values)
        trackers = v["trackers"]
        if not trackers:
            raise ImproperlyConfigured("MogileFSStorage needs trackers (or MOGILEFS_TRACKERS)")
        items = trackers.split(",") if isinstance(trackers, str) else list(trackers)
        items = [str(item).strip() for item in items if str(item).strip()]
        try:
            parse_trackers(items)
        except ValueError as exc:
            raise ImproperlyConfigured(f"MogileFSStorage option trackers: {exc}") from exc
        if not v["domain"]:
            raise ImproperlyConfigured("MogileFSStorage needs domain (or MOGILEFS_DOMAIN)")
        path_cache = _text("path_cache", v["path_cache"])
        if path_cache not in settings.CACHES:
            raise ImproperlyConfigured(
                f"MogileFSStorage option path_cache={path_cache!r} is not an alias in CACHES"
            )
        metrics_path = _text("metrics_path", v["metrics_path"] or "")
        if metrics_path and not metrics_path.startswith("/"):
            raise ImproperlyConfigured(
                f"MogileFSStorage option metrics_path={metrics_path!r} must start with /"
            )
        return cls(
            trackers=tuple(items),
            domain=_text("domain", v["domain"]),
            mogile_class=_text("mogile_class", v["mogile_class"]) or None,
            media_url=with_slash(_text("media_url", v["media_url"])),
            serve_with_perlbal=_flag("serve_with_perlbal", v["serve_with_perlbal"]),
            allow_overwrite=_flag("allow_overwrite", v["allow_overwrite"]),
            timeout=_seconds("timeout", v["timeout"], positive=True),
            connect_timeout=_seconds("connect_timeout", v["connect_timeout"], positive=True),
            http_timeout=_timeout_pair(v["http_timeout"]),
            pathcount=int(_number("pathcount", v["pathcount"], minimum=1, whole=True)),
            path_cache=path_cache,
            path_cache_timeout=_seconds("path_cache_timeout", v["path_cache_timeout"]),
            local_path_cache_timeout=_seconds(
                "local_path_cache_timeout", v["local_path_cache_timeout"]
            ),
            cache_control=_text("cache_control", v["cache_control"]),
            reproxy_cache_for=int(
                _number("reproxy_cache_for", v["reproxy_cache_for"], minimum=0, whole=True)
            ),
            reproxy_from=networks("reproxy_from", v["reproxy_from"]),
            metrics_path=metrics_path,
            metrics_allow_from=networks("metrics_allow_from", v["metrics_allow_from"]),
            metrics_cache_seconds=_seconds("metrics_cache_seconds", v["metrics_cache_seconds"]),
        )

    @cached_property
    def serve_prefix(self) -> str | None:
        """The path on this site the files are served under, or None when ``media_url``
        names another host (an absolute URL)."""
        return serve_prefix(self.media_url)


OPTION_NAMES = frozenset(f.name for f in fields(Config))


def with_slash(media_url: str) -> str:
    """The one rule for ``media_url``: it ends with a slash, which is added if missing
    (as Django's ``FileSystemStorage`` does for ``base_url``)."""
    return media_url if media_url.endswith("/") else media_url + "/"


def serve_prefix(media_url: str) -> str | None:
    """``media_url`` (with its slash) if it is a path on this site, else None."""
    url = with_slash(media_url)
    if urlsplit(url).netloc or not url.startswith("/"):
        return None
    return url


def networks(name: str, value: Any) -> tuple[Network, ...]:
    """Addresses or networks, as a list or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    try:
        return tuple(
            ipaddress.ip_network(str(i).strip(), strict=False) for i in items if str(i).strip()
        )
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"MogileFSStorage option {name} must be IP addresses or networks: {exc}"
        ) from exc


def _bad(name: str, value: Any, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"MogileFSStorage option {name}={value!r}: expected {expected}")


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(name, value, "a string")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, value, "True or False")
    return value


def _number(name: str, value: Any, *, minimum: float, whole: bool = False) -> float:
    expected = f"a {'whole ' if whole else ''}number of at least {minimum:g}"
    if isinstance(value, bool):
        raise _bad(name, value, expected)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(name, value, expected) from None
    if not math.isfinite(number) or number < minimum or (whole and not number.is_integer()):
        raise _bad(name, value, expected)
    return number


def _seconds(name: str, value: Any, *, positive: bool = False) -> float:
    seconds = _number(name, value, minimum=0)
    if positive and seconds == 0:
        raise _bad(name, value, "a number of seconds above 0")
    return seconds


def _timeout_pair(value: Any) -> tuple[float, float]:
    """(connect, read) seconds; one number is both, as in ``requests``."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        value = (value, value)
    try:
        connect, read = value
    except (TypeError, ValueError):
        raise _bad("http_timeout", value, "(connect, read) seconds") from None
    return (
        _seconds("http_timeout", connect, positive=True),
        _seconds("http_timeout", read, positive=True),
    )
