"""File operations on one MogileFS domain: store, read, paths, delete, rename, list.

Storing follows the tracker's recipe: ``create_open`` (with ``multi_dest``) gives
up to three destinations; the bytes are PUT to the first that accepts them (the
source is rewound between attempts), then ``create_close`` tells the tracker the
size and, for classes with a hashtype, the checksum, which the tracker verifies
against the stored copy (``checksumverify=1``): a mismatch raises
``ChecksumMismatchError`` and nothing is stored under the key.

A ``create_close`` whose answer was lost and whose resend the next tracker refuses
(``no_temp_file``) is checked with ``file_info`` (see :mod:`.lost_answers`); if the key
does not hold this fid, the whole store runs once more from ``create_open``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import requests

from .cluster import ClassInfo, parse_domains
from .exceptions import (
    CloseFailedError,
    MogileFSError,
    NoneMatchError,
    StorageNodeError,
    UnknownKeyError,
)
from .nodes import CHUNK_SIZE, StorageHTTP
from .protocol import destinations, numbered, validate_key
from .tracker import TrackerPool

logger = logging.getLogger(__name__)

SPOOL_MAX = 1024 * 1024  # bytes kept in memory before spilling to a temporary file
LIST_PAGE = 1000  # the tracker's maximum for list_keys
CLASS_CACHE_SECONDS = 60.0
STORE_ATTEMPTS = 2  # the second only when a lost create_close did not take effect
HASH_ALGORITHMS = {"MD5": "md5", "SHA-1": "sha1"}

Content = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]


@dataclass(frozen=True)
class FileInfo:
    """What ``file_info`` says about a key. ``devids`` is filled when asked for."""

    fid: int
    key: str
    domain: str
    cls: str
    length: int
    devcount: int
    devids: tuple[int, ...] = ()
    checksum: str | None = None


class MogileFSClient:
    """A client for one domain, over several trackers with failover.

    Args:
        trackers: ``"host:port,host:port"`` or a list of ``"host:port"``.
        domain: the MogileFS domain every key lives in.
        timeout / connect_timeout / dead_timeout: see :class:`TrackerPool`.
        http_timeout: (connect, read) seconds for storage node HTTP (default 3, 30).
        pool: share a :class:`TrackerPool` instead of building one.
    """

    def __init__(
        self,
        trackers: str | Sequence[str] | None,
        domain: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        dead_timeout: float = 30.0,
        http_timeout: tuple[float, float] = (3.0, 30.0),
        pool: TrackerPool | None = None,
    ) -> None:
        if not domain:
            raise ValueError("A MogileFS domain is required")
        if pool is None:
            if not trackers:
                raise ValueError("At least one MogileFS tracker is required")
            pool = TrackerPool(
                trackers,
                timeout=timeout,
                connect_timeout=connect_timeout,
                dead_timeout=dead_timeout,
            )
        self.pool = pool
        self.domain = domain
        self.http = StorageHTTP(http_timeout)
        self._classes: dict[str, ClassInfo] = {}
        self._classes_at = -CLASS_CACHE_SECONDS
        self._classes_lock = threading.Lock()

    def _call(self, command: str, **args: object) -> dict[str, str]:
        return self.pool.request(command, {"domain": self.domain, **args})

    # -- writing ---------------------------------------------------------------

    def store(self, key: str, content: Content, *, cls: str | None = None) -> int:
        """Store ``content`` under ``key`` (replacing any file there) and return its size.

        ``content`` is bytes, a binary file-like object (read from its current
        position), or an iterable of bytes. Seekable files are streamed as they
        are; anything else is spooled to a temporary file first, never read
        whole into memory.
        """
        validate_key(key)
        hashtype = self._hashtype(cls)
        with _Source.of(content) as source:
            attempt = 1
            while True:
                try:
                    return self._store_once(key, source, cls, hashtype)
                except CloseFailedError as exc:
                    if not exc.after_lost_answer or attempt >= STORE_ATTEMPTS:
                        raise
                    attempt += 1
                    logger.warning(
                        "Storing %r: a lost create_close did not take effect (%s); starting over",
                        key,
                        exc,
                    )

    def _store_once(self, key: str, source: _Source, cls: str | None, hashtype: str | None) -> int:
        """One ``create_open`` → PUT → ``create_close`` round."""
        opened = self._call(
            "create_open",
            key=key,
            multi_dest=1,
            size=source.size,
            **({"class": cls} if cls else {}),
        )
        fid = opened["fid"]
        errors = []
        for devid, path in destinations(opened):
            try:
                digest = source.put(self.http, path, hashtype)
            except StorageNodeError as exc:
                logger.warning("Storing %r on %s failed: %s", key, path, exc)
                errors.append(str(exc))
                continue
            checksum = f"{hashtype}:{digest}" if hashtype and digest else None
            self._call(
                "create_close",
                fid=fid,
                devid=devid,
                path=path,
                key=key,
                size=source.size,
                checksum=checksum,
                checksumverify=1 if checksum else None,
            )
            return source.size
        raise StorageNodeError(f"No storage node accepted {key!r}: " + "; ".join(errors))

    def delete(self, key: str) -> None:
        """Delete ``key``; raises :class:`UnknownKeyError` if it does not exist.

        A resend after a lost answer that finds the key gone counts as done.
        """
        self._call("delete", key=validate_key(key))

    def rename(self, from_key: str, to_key: str) -> None:
        """Rename a key; raises ``KeyExistsError`` if ``to_key`` exists (never overwrites)."""
        self._call("rename", from_key=validate_key(from_key), to_key=validate_key(to_key))

    def update_class(self, key: str, cls: str) -> None:
        """Move a file to another class; the tracker re-replicates it in the background."""
        self._call("updateclass", key=validate_key(key), **{"class": cls})

    # -- reading ---------------------------------------------------------------

    def get_paths(self, key: str, *, pathcount: int = 2, noverify: bool = True) -> list[str]:
        """The URLs of a key's copies (at most ``pathcount``; the tracker gives at least 2)."""
        data = self._call(
            "get_paths",
            key=validate_key(key),
            pathcount=pathcount,
            noverify=1 if noverify else None,
        )
        return numbered(data, "paths", "path%d")

    def file_info(self, key: str, *, devices: bool = False) -> FileInfo:
        data = self._call("file_info", key=validate_key(key), devices=1 if devices else None)
        devids = tuple(int(d) for d in data.get("devids", "").split(",") if d)
        return FileInfo(
            fid=int(data["fid"]),
            key=data.get("key", key),
            domain=data.get("domain", ""),
            cls=data.get("class", ""),
            length=int(data.get("length") or 0),
            devcount=int(data.get("devcount") or 0),
            devids=devids,
            checksum=data.get("checksum"),
        )

    def exists(self, key: str) -> bool:
        try:
            self.file_info(key)
        except UnknownKeyError:
            return False
        return True

    def open(self, key: str, *, paths: Sequence[str] | None = None) -> BinaryIO:
        """Read a file into a seekable spooled temporary file (positioned at 0).

        Each path is tried in turn; a copy that fails or is cut short is skipped.
        """
        paths = list(paths) if paths is not None else self.get_paths(key, pathcount=3)
        errors = []
        for path in paths:
            try:
                return self._download(path)
            except StorageNodeError as exc:
                errors.append(str(exc))
        raise StorageNodeError(
            f"No storage node served {key!r}: " + "; ".join(errors or ["no paths"])
        )

    def _download(self, path: str) -> BinaryIO:
        response = self.http.get([path])
        expected = response.headers.get("Content-Length")
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)
        try:
            with response:
                for chunk in response.iter_content(CHUNK_SIZE):
                    spool.write(chunk)
        except requests.RequestException as exc:
            spool.close()
            raise StorageNodeError(f"Reading {path} failed: {exc}") from exc
        if expected is not None and spool.tell() != int(expected):
            spool.close()
            raise StorageNodeError(f"{path} was cut short ({spool.tell()} of {expected} bytes)")
        spool.seek(0)
        return spool

    # -- listing ---------------------------------------------------------------

    def list_keys(self, prefix: str = "", *, after: str | None = None) -> Iterator[str]:
        """Every key starting with ``prefix`` and sorting after ``after``, in the tracker's
        order, across all pages (one ``list_keys`` request each, as they are read)."""
        for page in self.list_key_pages(prefix, after=after):
            yield from page

    def list_key_pages(self, prefix: str = "", *, after: str | None = None) -> Iterator[list[str]]:
        """:meth:`list_keys` a page (one tracker request) at a time; a page may be empty.

        The tracker matches ``after`` against the prefix as a Perl regular expression
        and uses the prefix in an SQL ``LIKE``, so a prefix with ``%``, ``\\`` or regex
        metacharacters is listed from its longest plain leading part and filtered here.
        """
        plain = _plain_prefix(prefix)
        while True:
            try:
                data = self._call("list_keys", prefix=plain or None, after=after, limit=LIST_PAGE)
            except NoneMatchError:
                return  # the tracker's way of saying "no more keys"
            keys = numbered(data, "key_count", "key_%d")
            yield [key for key in keys if key.startswith(prefix)]
            after = data.get("next_after") or (keys[-1] if keys else None)
            if not keys or not after:
                return

    # -- classes ---------------------------------------------------------------

    def classes(self, *, refresh: bool = False) -> dict[str, ClassInfo]:
        """This domain's classes, cached for a minute (they change rarely).

        The tracker is asked outside the lock; if it cannot answer, the last known
        classes are used again rather than failing every upload.
        """
        with self._classes_lock:
            fresh = time.monotonic() - self._classes_at <= CLASS_CACHE_SECONDS
            if fresh and not refresh:
                return self._classes
        try:
            domains = parse_domains(self.pool.request("get_domains"))
        except MogileFSError:
            if self._classes_at < 0:
                raise
            logger.warning("Could not refresh the classes of %r; using the last known", self.domain)
            return self._classes
        with self._classes_lock:
            self._classes = domains.get(self.domain, {})
            self._classes_at = time.monotonic()
            return self._classes

    def _hashtype(self, cls: str | None) -> str | None:
        info = self.classes().get(cls or "default")
        if info is None or info.hashtype not in HASH_ALGORITHMS:
            return None
        return info.hashtype

    def close(self) -> None:
        self.pool.close()
        self.http.close()


_LIKE_OR_REGEX = set("%\\*+?^$()[]{}|")


def _plain_prefix(prefix: str) -> str:
    """The leading part of ``prefix`` that is safe in the tracker's LIKE and regex."""
    for i, char in enumerate(prefix):
        if char in _LIKE_OR_REGEX:
            return prefix[:i]
    return prefix


class _Source:
    """A rewindable, sized view of the content to upload."""

    def __init__(self, fileobj: BinaryIO, start: int, size: int, owned: bool) -> None:
        self.fileobj, self.start, self.size, self._owned = fileobj, start, size, owned

    @classmethod
    def of(cls, content: Content) -> _Source:
        if isinstance(content, bytes | bytearray | memoryview):
            return cls(io.BytesIO(bytes(content)), 0, len(content), owned=True)
        if hasattr(content, "read") and _seekable(content):
            start = content.tell()
            size = content.seek(0, io.SEEK_END) - start
            content.seek(start)
            return cls(content, start, size, owned=False)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)
        chunks = (
            iter(lambda: content.read(CHUNK_SIZE), b"") if hasattr(content, "read") else content
        )
        for chunk in chunks:
            spool.write(chunk)
        size = spool.tell()
        return cls(spool, 0, size, owned=True)

    def put(self, http: StorageHTTP, url: str, hashtype: str | None) -> str | None:
        """PUT the whole content from its start; return its hex digest if asked for."""
        self.fileobj.seek(self.start)
        reader = _HashingReader(self.fileobj, self.size, HASH_ALGORITHMS.get(hashtype or ""))
        http.put(url, reader if self.size else b"", self.size)
        if reader.sent != self.size and self.size:
            raise StorageNodeError(f"PUT {url}: source gave {reader.sent} of {self.size} bytes")
        return reader.hexdigest()

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned:
            self.fileobj.close()


def _seekable(fileobj: object) -> bool:
    try:
        return bool(fileobj.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


class _HashingReader:
    """Reads at most ``size`` bytes, counting and hashing them as ``requests`` sends them.

    ``__len__`` lets ``requests`` send a ``Content-Length`` instead of chunking.
    """

    def __init__(self, fileobj: BinaryIO, size: int, algorithm: str | None) -> None:
        self._fileobj = fileobj
        self._left = size
        self.sent = 0
        self._hash = hashlib.new(algorithm) if algorithm else None

    def __len__(self) -> int:
        return self._left

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(CHUNK_SIZE), b"")

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._fileobj.read(n)
        self._left -= len(data)
        self.sent += len(data)
        if self._hash is not None:
            self._hash.update(data)
        return data

    def hexdigest(self) -> str | None:
        return self._hash.hexdigest() if self._hash is not None else None
