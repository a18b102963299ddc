"""The Django storage backend, for Django 5.2's ``STORAGES`` setting.

Configured as django-storages' backends are: :meth:`MogileFSStorage.get_default_settings`
gives each option's value from its setting (``MOGILEFS_TRACKERS``, ``MOGILEFS_DOMAIN``,
...) or its default, the storage's ``OPTIONS`` replace them, and an option the backend
does not know is an error. Resolved lazily, as Django's ``FileSystemStorage`` is: on
first use, and again after a setting changes (``override_settings``), so building a
storage at import time reads nothing yet. ``storage.config`` is the result, checked
(:class:`~django_mogilefs.conf.Config`).
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
from django.core.files.storage import Storage, storages
from django.core.signals import setting_changed
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.module_loading import import_string

from . import metrics
from .client import FileInfo, MogileFSClient
from .cluster import ClusterAdmin
from .conf import Config
from .exceptions import InvalidKeyError, StorageNodeError, UnknownKeyError
from .protocol import MAX_KEY_BYTES, validate_key

# The default of metrics_allow_from: loopback and the private networks.
PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
INCOMPLETE_PATHS_TIMEOUT = 5  # seconds
# Sorts after every key that starts the same (the tracker orders keys by their UTF-8 bytes,
# and no UTF-8 character sorts after U+10FFFF's), however long a key is.
PAST_EVERY_KEY = "\U0010ffff" * (MAX_KEY_BYTES // 4 + 1)
LOCAL_PATH_CACHE_SIZE = 4096  # entries per storage and process (a few hundred bytes each)

T = TypeVar("T")


def setting(name: str, default: Any = None) -> Any:
    return getattr(settings, name, default)


def storage_for(alias: str | None = None) -> MogileFSStorage:
    """The storage ``alias`` of ``STORAGES``, or else the first one whose backend is
    ``MogileFSStorage`` or a subclass of it."""
    if alias is None:
        alias = first_alias()
        if alias is None:
            raise ImproperlyConfigured("No storage in STORAGES is a MogileFSStorage")
    backend = storages[alias]
    if not isinstance(backend, MogileFSStorage):
        raise ImproperlyConfigured(f"STORAGES[{alias!r}] is not a MogileFSStorage")
    return backend


def first_alias() -> str | None:
    """The first alias in ``STORAGES`` whose backend is a MogileFSStorage, or None.

    Found once per ``STORAGES`` (a new one after ``override_settings``): the WSGI fast
    path and ``/metrics`` ask for it on every request.
    """
    global _first_alias
    configured = settings.STORAGES
    if _first_alias[0] is not configured:
        _first_alias = (configured, _find_first_alias(configured))
    return _first_alias[1]


_first_alias: tuple[object, str | None] = (None, None)


def _find_first_alias(configured: dict[str, dict[str, Any]]) -> str | None:
    for alias, conf in configured.items():
        try:
            backend = import_string(conf.get("BACKEND", ""))
        except ImportError:
            continue  # Django's own error comes when that alias is used
        if isinstance(backend, type) and issubclass(backend, MogileFSStorage):
            return alias
    return None


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

    Public beyond Django's storage API: ``config`` (every option, checked: its
    ``trackers``, ``domain``, ``timeout``, ``connect_timeout``... see
    :class:`~django_mogilefs.conf.Config`), ``client`` (the
    :class:`~django_mogilefs.client.MogileFSClient` of the domain), :meth:`cluster`,
    :meth:`file_info`, :meth:`locate` and :meth:`paths`.
    """

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.get_default_settings()))
        if unknown:
            raise ImproperlyConfigured(
                f"Invalid option(s) {', '.join(map(repr, unknown))} for "
                f"{type(self).__name__}; valid options are: "
                f"{', '.join(sorted(self.get_default_settings()))}"
            )
        self._options = options
        setting_changed.connect(self._clear_cached_properties)

    def get_default_settings(self) -> dict[str, Any]:
        """Every option, from its setting or its default (the table in the package README).

        A subclass changes defaults by overriding this (``super()`` and then its own).
        """
        return {
            "trackers": setting("MOGILEFS_TRACKERS"),
            "domain": setting("MOGILEFS_DOMAIN"),
            "mogile_class": setting("MOGILEFS_CLASS"),
            "media_url": setting("MOGILEFS_MEDIA_URL", "/media/"),
            "serve_with_perlbal": setting("SERVE_WITH_PERLBAL", True),
            "allow_overwrite": setting("MOGILEFS_ALLOW_OVERWRITE", False),
            "timeout": setting("MOGILEFS_TIMEOUT", 10.0),
            "connect_timeout": setting("MOGILEFS_CONNECT_TIMEOUT", 3.0),
            "http_timeout": setting("MOGILEFS_HTTP_TIMEOUT", (3.0, 30.0)),
            "pathcount": setting("MOGILEFS_PATHCOUNT", 3),
            "path_cache": setting("MOGILEFS_PATH_CACHE", "default"),
            "path_cache_timeout": setting("MOGILEFS_PATH_CACHE_TIMEOUT", 300),
            "local_path_cache_timeout": setting("MOGILEFS_LOCAL_PATH_CACHE_TIMEOUT", 10),
            "cache_control": setting("MOGILEFS_CACHE_CONTROL", "public, max-age=3600"),
            "reproxy_cache_for": setting("MOGILEFS_REPROXY_CACHE_FOR", 60),
            "reproxy_from": setting("MOGILEFS_REPROXY_FROM", ("127.0.0.1/32", "::1/128")),
            "metrics_path": setting("MOGILEFS_METRICS_PATH", "/metrics"),
            "metrics_allow_from": setting("MOGILEFS_METRICS_ALLOW_FROM", PRIVATE_NETWORKS),
            "metrics_cache_seconds": setting("MOGILEFS_METRICS_CACHE_SECONDS", 15),
        }

    def _clear_cached_properties(self, setting: str, **kwargs: Any) -> None:
        if setting.startswith("MOGILEFS_") or setting in ("SERVE_WITH_PERLBAL", "CACHES"):
            for name in ("config", "client", "_recent"):
                self.__dict__.pop(name, None)

    @cached_property
    def config(self) -> Config:
        """The options: the defaults of :meth:`get_default_settings`, then ``OPTIONS``."""
        return Config.of({**self.get_default_settings(), **self._options})

    def may_reproxy(self, address: str | None) -> bool:
        """Whether a request from ``address`` may be answered with storage URLs.

        ``serve_with_perlbal`` is on and the peer is in ``reproxy_from``.
        """
        if not self.config.serve_with_perlbal:
            return False
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.config.reproxy_from)

    @cached_property
    def client(self) -> MogileFSClient:
        c = self.config
        return MogileFSClient(
            list(c.trackers),
            c.domain,
            timeout=c.timeout,
            connect_timeout=c.connect_timeout,
            http_timeout=c.http_timeout,
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
        With ``allow_overwrite`` the name is taken as it is, without asking the
        tracker (as ``FileSystemStorage(allow_overwrite=True)`` does): for names that
        are new anyway, such as keys with a random token.
        """
        if len(str(name).encode("utf-8")) > MAX_KEY_BYTES:
            raise SuspiciousFileOperation(
                f"File name is longer than MogileFS's {MAX_KEY_BYTES}-byte key limit: {name!r}"
            )
        return super().get_available_name(name, max_length=max_length)

    def is_name_available(self, name: str, max_length: int | None = None) -> bool:
        if self.config.allow_overwrite:
            return not (max_length and len(name) > max_length)
        return super().is_name_available(name, max_length=max_length)

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
            self.client.store(key, body, cls=self.config.mogile_class)
        except Exception as exc:
            metrics.UPLOADS.labels(metrics.upload_outcome(exc)).inc()
            raise
        metrics.UPLOADS.labels(metrics.upload_outcome(None)).inc()
        self.forget_paths(name)
        # The file's class, for its first locate (see _replicated): one round trip less.
        cls = self.config.mogile_class or "default"
        timeout = self.config.path_cache_timeout
        caches[self.config.path_cache].set(self._cache_keys(key)[1], cls, timeout)
        return name

    def delete(self, name: str) -> None:
        key = self._key(name)
        # Already gone is fine, as FileSystemStorage does for a concurrent delete.
        with contextlib.suppress(UnknownKeyError):
            self.client.delete(key)
        self._recent.forget(key)
        caches[self.config.path_cache].delete_many(self._cache_keys(key))

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
        return self.config.media_url + quote(self._key(name), safe="/")

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        """Directories and files right under ``path``, emulated over key prefixes.

        A page of keys that ends inside a folder is followed by a listing that starts past
        that folder's last possible key, so a folder costs one ``list_keys``, not one per
        thousand of its keys: listing the top of a domain reads a page per folder.
        """
        prefix = self._key(path).rstrip("/") + "/" if path not in ("", ".", "/") else ""
        dirs: set[str] = set()
        files: list[str] = []
        after: str | None = None
        skipped_once: set[str] = set()
        while True:
            skipped = None
            for page in self.client.list_key_pages(prefix, after=after):
                for key in page:
                    head, sep, _ = key[len(prefix) :].partition("/")
                    if sep:
                        dirs.add(head)
                    elif head:
                        files.append(head)
                folder, sep, _ = page[-1][len(prefix) :].partition("/") if page else ("", "", "")
                # Skip each folder once: a tracker whose order is not the bytes' (a
                # collation) may not skip it, and then pages on through it as before.
                if sep and folder not in skipped_once:
                    skipped_once.add(folder)
                    skipped = prefix + folder + "/" + PAST_EVERY_KEY
                    break
            if skipped is None:
                return sorted(dirs), files
            after = skipped

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
                response = self.client.http.request("HEAD", path)
            except StorageNodeError:
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

    def _cache_keys(self, key: str) -> tuple[str, str]:
        """The ``path_cache`` keys of a file's paths and of its class."""
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
        domain = self.config.domain
        return f"mogilefs:paths:{domain}:{digest}", f"mogilefs:class:{domain}:{digest}"

    @cached_property
    def _recent(self) -> _RecentPaths:
        return _RecentPaths(self.config.local_path_cache_timeout)

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
        cache = caches[self.config.path_cache]
        paths_key, class_key = self._cache_keys(key)
        cached = cache.get_many([paths_key, class_key])  # one round trip for both
        entry = cached.get(paths_key)
        metrics.PATH_CACHE.labels("hit" if entry else "miss").inc()
        if entry:
            paths, complete = entry
            location = self._location(paths, complete, cached=True)
            self._recent.put(key, location, self._cache_timeout(complete))
            return location
        pathcount = self.config.pathcount
        paths = self.client.get_paths(key, pathcount=pathcount)
        complete = len(paths) >= pathcount or self._replicated(
            key, len(paths), cached.get(class_key)
        )
        cache.set(paths_key, (paths, complete), self._cache_timeout(complete))
        location = self._location(paths, complete, cached=False)
        self._recent.put(key, location._replace(cached=True), self._cache_timeout(complete))
        return location

    def _location(self, paths: Sequence[str], complete: bool, *, cached: bool) -> Location:
        cache_for = self.config.reproxy_cache_for if complete else 0
        return Location(tuple(paths), complete, cache_for, cached)

    def _cache_timeout(self, complete: bool) -> float:
        return self.config.path_cache_timeout if complete else INCOMPLETE_PATHS_TIMEOUT

    def _replicated(self, key: str, found: int, cls: str | None) -> bool:
        """Whether ``found`` paths (fewer than ``pathcount``) are every copy the class asks for.

        That is ``found >= min(pathcount, mindevcount)``, the class's copy count from
        the class table (``get_domains``, cached a minute). A real tracker lists up to
        ``pathcount`` paths on readable devices and says nothing of the file's class,
        so the class comes from ``path_cache``, where saving through this package put
        it; only for a file not saved so (or long ago) is ``file_info`` asked, once,
        and its class kept there too. A file with fewer copies than its class wants
        (still replicating) or a copy on a device the tracker skipped is incomplete.
        """
        pathcount = self.config.pathcount
        info = None
        if cls is None:
            info = self.client.file_info(key)
            if found < min(pathcount, info.devcount):
                return False  # a copy is on a device the tracker skipped (down, dead)
            cls = info.cls
            timeout = self.config.path_cache_timeout
            caches[self.config.path_cache].set(self._cache_keys(key)[1], cls, timeout)
        wanted = self.client.classes().get(cls)
        if wanted is None:  # a class the table does not list: the copies the file has
            info = info or self.client.file_info(key)
            return found >= min(pathcount, info.devcount)
        return found >= min(pathcount, wanted.mindevcount)

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
        caches[self.config.path_cache].delete(self._cache_keys(key)[0])


def _seekable(content: File) -> bool:
    try:
        return bool(content.seekable())
    except (AttributeError, OSError, ValueError):
        return False
