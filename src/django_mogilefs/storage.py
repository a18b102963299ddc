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
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, NamedTuple
from urllib.parse import quote

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
    "cache_control": ("MOGILEFS_CACHE_CONTROL", "public, max-age=3600"),
    "reproxy_cache_for": ("MOGILEFS_REPROXY_CACHE_FOR", 60),
    "reproxy_from": ("MOGILEFS_REPROXY_FROM", ("127.0.0.1/32", "::1/128")),
}


INCOMPLETE_PATHS_TIMEOUT = 5  # seconds


class Located(NamedTuple):
    paths: list[str]
    complete: bool  # every copy the class asks for is among the paths


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
            for name in ("config", "client"):
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

    def trusts_proxy(self, address: str | None) -> bool:
        """Whether a request from ``address`` may be answered with storage URLs."""
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.config["reproxy_from"])

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
            return File(self.client.open(key, paths=self.paths(name)), name=name)
        except UnknownKeyError as exc:
            raise FileNotFoundError(f"No such file in MogileFS: {name!r}") from exc
        except StorageNodeError:
            self.forget_paths(name)  # the cached paths may be stale: ask the tracker again
            try:
                return File(self.client.open(key), name=name)
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

    def _paths_cache_key(self, name: str) -> str:
        digest = hashlib.sha1(self._key(name).encode("utf-8")).hexdigest()
        return f"mogilefs:paths:{self.config['domain']}:{digest}"

    def paths(self, name: str) -> list[str]:
        """The storage node URLs of ``name`` (at most ``pathcount``, no HEAD check), cached."""
        return self.located(name).paths

    def located(self, name: str) -> Located:
        """The paths of ``name`` and whether they are all the copies it should have.

        Cached in Django's cache ``path_cache``; saving or deleting the key through
        this storage invalidates it. A file caught before replication finished (a
        real tracker returns one path right after a store) or with a copy on a dead
        device is cached for a few seconds only, so the missing paths show up soon.
        Raises ``UnknownKeyError``.
        """
        cache = caches[self.config["path_cache"]]
        cache_key = self._paths_cache_key(name)
        cached = cache.get(cache_key)
        metrics.PATH_CACHE.labels("hit" if cached else "miss").inc()
        if cached:
            return Located(*cached)
        key = self._key(name)
        pathcount = int(self.config["pathcount"])
        paths = self.client.get_paths(key, pathcount=pathcount)
        complete = len(paths) >= pathcount or self._replicated(key, len(paths), pathcount)
        timeout = self.config["path_cache_timeout"] if complete else INCOMPLETE_PATHS_TIMEOUT
        cache.set(cache_key, (paths, complete), timeout)
        return Located(paths, complete)

    def _replicated(self, key: str, found: int, pathcount: int) -> bool:
        """Whether ``found`` paths are every copy the file's class asks for."""
        info = self.client.file_info(key)
        wanted = self.client.classes().get(info.cls)
        mindevcount = wanted.mindevcount if wanted else info.devcount
        return found >= min(pathcount, max(info.devcount, mindevcount))

    def forget_paths(self, name: str) -> None:
        caches[self.config["path_cache"]].delete(self._paths_cache_key(name))


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
