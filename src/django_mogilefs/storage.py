"""The Django storage backend, for Django 5.2's ``STORAGES`` setting.

Shaped like Django's ``FileSystemStorage``: options are kept raw in ``__init__`` and
resolved lazily against settings, so ``override_settings`` works and nothing is
read at import time. Settings named by the original design are the fallbacks:
``MOGILEFS_TRACKERS``, ``MOGILEFS_DOMAIN``, ``MOGILEFS_MEDIA_URL``, ``SERVE_WITH_PERLBAL``.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

import requests
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import Storage
from django.core.signals import setting_changed
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from . import metrics
from .client import FileInfo, MogileFSClient
from .cluster import ClusterAdmin
from .exceptions import InvalidKeyError, StorageNodeError, UnknownKeyError
from .protocol import MAX_KEY_BYTES, validate_key

# option name -> (setting name, default)
OPTIONS: dict[str, tuple[str, Any]] = {
    "trackers": ("MOGILEFS_TRACKERS", None),
    "domain": ("MOGILEFS_DOMAIN", None),
    "mogile_class": ("MOGILEFS_CLASS", None),
    "media_url": ("MOGILEFS_MEDIA_URL", "/media/"),
    "serve_with_perlbal": ("SERVE_WITH_PERLBAL", True),
    "timeout": ("MOGILEFS_TIMEOUT", 10.0),
    "connect_timeout": ("MOGILEFS_CONNECT_TIMEOUT", 3.0),
    "http_timeout": ("MOGILEFS_HTTP_TIMEOUT", (3.0, 30.0)),
    "pathcount": ("MOGILEFS_PATHCOUNT", 3),
    "path_cache": ("MOGILEFS_PATH_CACHE", "default"),
    "path_cache_timeout": ("MOGILEFS_PATH_CACHE_TIMEOUT", 300),
    "local_path_cache_timeout": ("MOGILEFS_LOCAL_PATH_CACHE_TIMEOUT", 10),
    "cache_control": ("MOGILEFS_CACHE_CONTROL", "public, max-age=3600"),
    "reproxy_cache_for": ("MOGILEFS_REPROXY_CACHE_FOR", 60),
    "reproxy_from": ("MOGILEFS_REPROXY_FROM", ("127.0.0.1/32", "::1/128")),
}


INCOMPLETE_PATHS_TIMEOUT = 5  # seconds
LOCAL_PATH_CACHE_SIZE = 4096  # entries per storage and process (a few hundred bytes each)

T = TypeVar("T")


class Location(NamedTuple):
    """Where the copies of a file are: the answer of :meth:`MogileFSStorage.locate`."""

    paths: tuple[str, ...]  # storage node URLs, the tracker's order
    complete: bool  # every copy the file's class asks for is among the paths
    cache_for: int  # seconds a proxy may reuse the paths (X-REPROXY-CACHE-FOR); 0: not at all
    cached: bool  # from a path cache, so possibly stale; False: the tracker's answer just now


class _RecentPaths:
    """Locations remembered for a few seconds by this process, in front of the shared cache.

    Each file request that Perlbal's reproxy cache misses asks the path cache, and a
    memcached get is a round trip to another process on every such request. Entries
    live ``timeout`` seconds at most, and no longer than the shared cache keeps such an
    answer (5 s for an incomplete one); saving or deleting through this storage forgets
    them here at once. A key saved or deleted by
    another process is seen here within ``timeout`` seconds, far sooner than Perlbal's
    reproxy cache forgets its paths; stale paths fail over as cached paths always do.
    """

    def __init__(self, timeout: float, size: int = LOCAL_PATH_CACHE_SIZE) -> None:
        self.timeout = timeout
        self.size = size
        self._entries: dict[str, tuple[float, Location]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Location | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: str, location: Location, timeout: float) -> None:
        lifetime = min(self.timeout, timeout)
        if lifetime <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (time.monotonic() + lifetime, location)
            while len(self._entries) > self.size:
                del self._entries[next(iter(self._entries))]  # the oldest entry

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


@deconstructible(path="django_mogilefs.storage.MogileFSStorage")
class MogileFSStorage(Storage):
    """Files in a MogileFS domain; each storage instance writes to one class.

    Keys are the file names (forward slashes, at most 255 UTF-8 bytes). MogileFS
    has no directories (``listdir`` emulates them over key prefixes) and keeps no
    timestamps (see :meth:`get_modified_time`).
    """

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ImproperlyConfigured(
                f"Invalid option(s) {', '.join(map(repr, unknown))} for MogileFSStorage; "
                f"valid options are: {', '.join(sorted(OPTIONS))}"
            )
        self._options = options
        setting_changed.connect(self._clear_cached_properties)

    def _clear_cached_properties(self, setting: str, **kwargs: Any) -> None:
        if setting.startswith("MOGILEFS_") or setting in ("SERVE_WITH_PERLBAL", "CACHES"):
            for name in ("config", "client", "_recent"):
                self.__dict__.pop(name, None)

    @cached_property
    def config(self) -> dict[str, Any]:
        """Every option: from ``OPTIONS`` when given, else from its setting, else the default."""
        config = {
            name: self._options.get(name, getattr(settings, setting, default))
            for name, (setting, default) in OPTIONS.items()
        }
        for name in ("trackers", "domain"):
            if not config[name]:
                setting = OPTIONS[name][0]
                raise ImproperlyConfigured(f"MogileFSStorage needs {setting}/{name} to be set")
        if not str(config["media_url"]).endswith("/"):
            raise ImproperlyConfigured("MOGILEFS_MEDIA_URL/media_url must end with a slash")
        config["reproxy_from"] = _networks(config["reproxy_from"])
        return config

    def may_reproxy(self, address: str | None) -> bool:
        """Whether a request from ``address`` may be answered with storage URLs.

        ``serve_with_perlbal`` is on and the peer is in ``reproxy_from``.
        """
        if not self.config["serve_with_perlbal"]:
            return False
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.config["reproxy_from"])

    @property
    def cache_control(self) -> str:
        """The ``Cache-Control`` header of served files."""
        return str(self.config["cache_control"])

    @cached_property
    def client(self) -> MogileFSClient:
        c = self.config
        return MogileFSClient(
            c["trackers"],
            c["domain"],
            timeout=float(c["timeout"]),
            connect_timeout=float(c["connect_timeout"]),
            http_timeout=tuple(c["http_timeout"]),
        )

    def cluster(self) -> ClusterAdmin:
        """Admin commands (hosts, devices, classes) over this storage's trackers."""
        return ClusterAdmin(pool=self.client.pool)

    # -- names -------------------------------------------------------------------

    def _key(self, name: str) -> str:
        """The MogileFS key for ``name``, or Django's usual exception for a bad name."""
        if name is None or str(name) == "":
            raise ValueError("The name must be given.")
        key = str(name).replace("\\", "/")
        if key.startswith("/"):
            raise SuspiciousFileOperation(f"Absolute file names are not allowed: {name!r}")
        if ".." in key.split("/"):
            raise SuspiciousFileOperation(f"Detected path traversal attempt in {name!r}")
        try:
            return validate_key(key)
        except InvalidKeyError as exc:
            raise SuspiciousFileOperation(f"Invalid MogileFS file name {name!r}: {exc}") from exc

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        """A name no file has yet: MogileFS silently replaces a key on save, Django must not.

        There is still a window between this check and the save (as with every
        storage); use unique names (``upload_to`` with a random part) for uploads.
        """
        if len(str(name).encode("utf-8")) > MAX_KEY_BYTES:
            raise SuspiciousFileOperation(
                f"File name is longer than MogileFS's {MAX_KEY_BYTES}-byte key limit: {name!r}"
            )
        return super().get_available_name(name, max_length=max_length)

    # -- the storage API ---------------------------------------------------------

    def _open(self, name: str, mode: str = "rb") -> File:
        if any(c in mode for c in "wax+"):
            raise ValueError(f"MogileFS files are read-only once stored; cannot open in {mode!r}")
        key = self._key(name)
        try:
            location = self.locate(name)
            return File(
                self._from_a_copy(name, location, lambda p: self.client.open(key, paths=p)),
                name=name,
            )
        except UnknownKeyError as exc:
            raise FileNotFoundError(f"No such file in MogileFS: {name!r}") from exc

    def _save(self, name: str, content: File) -> str:
        key = self._key(name)
        if _seekable(content):
            content.seek(0)
            body: Any = content
        else:
            body = content.chunks()
        try:
            self.client.store(key, body, cls=self.config["mogile_class"])
        except Exception as exc:
            metrics.UPLOADS.labels(metrics.upload_outcome(exc)).inc()
            raise
        metrics.UPLOADS.labels(metrics.upload_outcome(None)).inc()
        self.forget_paths(name)
        return name

    def delete(self, name: str) -> None:
        key = self._key(name)
        # Already gone is fine, as FileSystemStorage does for a concurrent delete.
        with contextlib.suppress(UnknownKeyError):
            self.client.delete(key)
        self.forget_paths(name)

    def exists(self, name: str) -> bool:
        return self.client.exists(self._key(name))

    def size(self, name: str) -> int:
        return self.file_info(name).length

    def file_info(self, name: str, *, devices: bool = False) -> FileInfo:
        """The tracker's ``file_info`` (fid, class, length, devcount); FileNotFoundError if none."""
        try:
            return self.client.file_info(self._key(name), devices=devices)
        except UnknownKeyError as exc:
            raise FileNotFoundError(f"No such file in MogileFS: {name!r}") from exc

    def url(self, name: str) -> str:
        return self.config["media_url"] + quote(self._key(name), safe="/")

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        """Directories and files right under ``path``, emulated over key prefixes."""
        prefix = self._key(path).rstrip("/") + "/" if path not in ("", ".", "/") else ""
        dirs: set[str] = set()
        files: list[str] = []
        for key in self.client.list_keys(prefix):
            rest = key[len(prefix) :]
            head, sep, _ = rest.partition("/")
            if sep:
                dirs.add(head)
            elif rest:
                files.append(rest)
        return sorted(dirs), files

    def get_modified_time(self, name: str) -> datetime:
        """When the file's copy on a storage node was written (its ``Last-Modified``).

        MogileFS itself keeps no modification time. A stored key is never changed
        in place (saving again makes a new fid), so the write time of the copy is
        the file's time; replicas may be a few seconds later than the original.
        """
        try:
            paths = self.paths(name)
        except UnknownKeyError as exc:
            raise FileNotFoundError(f"No such file in MogileFS: {name!r}") from exc
        for path in paths:
            try:
                response = self.client.http.session.head(path, timeout=self.client.http.timeout)
            except OSError:
                continue
            stamp = response.headers.get("Last-Modified")
            if response.status_code == 200 and stamp:
                moment = email.utils.parsedate_to_datetime(stamp).astimezone(UTC)
                return moment if settings.USE_TZ else timezone.make_naive(moment)
        raise FileNotFoundError(f"No storage node reported a time for {name!r}")

    def get_created_time(self, name: str) -> datetime:
        """Same as :meth:`get_modified_time`: stored files are immutable."""
        return self.get_modified_time(name)

    # -- paths, cached -----------------------------------------------------------

    def _paths_cache_key(self, key: str) -> str:
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
        return f"mogilefs:paths:{self.config['domain']}:{digest}"

    @cached_property
    def _recent(self) -> _RecentPaths:
        return _RecentPaths(float(self.config["local_path_cache_timeout"]))

    def paths(self, name: str) -> list[str]:
        """The storage node URLs of ``name`` (at most ``pathcount``, no HEAD check), cached."""
        return list(self.locate(name).paths)

    def locate(self, name: str) -> Location:
        """Where the copies of ``name`` are, whether that is all of them, how long to trust it.

        Looked up in this process's recent answers (``local_path_cache_timeout``,
        ``MOGILEFS_LOCAL_PATH_CACHE_TIMEOUT``), then in Django's cache ``path_cache``,
        then asked of the tracker; saving or deleting the key through this storage
        forgets it. A file caught before replication finished (a real tracker returns
        one path right after a store) or with a copy on a dead device is cached for a
        few seconds only, so that the missing paths show up soon.

        Raises ``SuspiciousFileOperation`` or ``ValueError`` for a bad name,
        ``UnknownKeyError`` when the tracker knows no such key, or another
        ``MogileFSError`` when it cannot answer.
        """
        key = self._key(name)
        recent = self._recent.get(key)
        if recent is not None:
            metrics.PATH_CACHE.labels("hit").inc()
            return recent
        cache = caches[self.config["path_cache"]]
        cache_key = self._paths_cache_key(key)
        cached = cache.get(cache_key)
        metrics.PATH_CACHE.labels("hit" if cached else "miss").inc()
        if cached:
            paths, complete = cached
            location = self._location(paths, complete, cached=True)
            self._recent.put(key, location, self._cache_timeout(complete))
            return location
        pathcount = int(self.config["pathcount"])
        paths = self.client.get_paths(key, pathcount=pathcount)
        complete = len(paths) >= pathcount or self._replicated(key, len(paths), pathcount)
        cache.set(cache_key, (paths, complete), self._cache_timeout(complete))
        location = self._location(paths, complete, cached=False)
        self._recent.put(key, location._replace(cached=True), self._cache_timeout(complete))
        return location

    def _location(self, paths: Sequence[str], complete: bool, *, cached: bool) -> Location:
        cache_for = int(self.config["reproxy_cache_for"]) if complete else 0
        return Location(tuple(paths), complete, cache_for, cached)

    def _cache_timeout(self, complete: bool) -> float:
        return float(self.config["path_cache_timeout"]) if complete else INCOMPLETE_PATHS_TIMEOUT

    def _replicated(self, key: str, found: int, pathcount: int) -> bool:
        """Whether ``found`` paths (fewer than ``pathcount``) are every copy the class asks for.

        That is ``found >= min(pathcount, max(devcount, mindevcount))``; the class
        table (``get_domains``, cached a minute) is only needed when every existing
        copy was found.
        """
        info = self.client.file_info(key)
        if found < min(pathcount, info.devcount):
            return False  # a copy is on a device the tracker skipped (down, dead)
        wanted = self.client.classes().get(info.cls)
        mindevcount = wanted.mindevcount if wanted else info.devcount
        return found >= min(pathcount, mindevcount)

    def fetch(self, name: str, location: Location, *, head: bool = False) -> requests.Response:
        """The first copy of ``name`` that answers 200, as a streaming response to close.

        ``location`` is what :meth:`locate` answered. Raises ``StorageNodeError`` when
        no copy answers, ``UnknownKeyError`` if the key went away meanwhile.
        """
        method = "HEAD" if head else "GET"
        return self._from_a_copy(
            name, location, lambda paths: self.client.http.get(paths, method=method)
        )

    def _from_a_copy(self, name: str, location: Location, read: Callable[[Sequence[str]], T]) -> T:
        """``read(paths)``; when every cached path fails, forget them and ask the tracker again.

        Cached paths can be stale (a replica moved, a node died, the key was saved
        again); paths the tracker has just given are not asked for a second time.
        """
        try:
            return read(location.paths)
        except StorageNodeError:
            if not location.cached:
                raise
        self.forget_paths(name)
        return read(self.locate(name).paths)

    def forget_paths(self, name: str) -> None:
        key = self._key(name)
        self._recent.forget(key)
        caches[self.config["path_cache"]].delete(self._paths_cache_key(key))


def _networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    items = value.split(",") if isinstance(value, str) else list(value or ())
    try:
        return tuple(ipaddress.ip_network(i.strip(), strict=False) for i in items if i.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"MOGILEFS_REPROXY_FROM/reproxy_from must be IP addresses or networks: {exc}"
        ) from exc


def _seekable(content: File) -> bool:
    try:
        return bool(content.seekable())
    except (AttributeError, OSError, ValueError):
        return False
