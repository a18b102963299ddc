"""Copying every file of one Django storage to another, keeping names (``mogilefs_copy``).

Safe to run again and again: a file already in the target with the same size and MD5
is skipped, one that differs is reported and left alone (never overwritten). Each file
is read whole from the source into a local spool first, so a source that fails half-way
never reaches the target; a copy that fails or is interrupted while being written is
deleted again (MogileFS never shows a key before its ``create_close``); every copy is
checked against the source's size and, in a MogileFS class with hashtype MD5, its MD5
(MogileFS: by the tracker itself, which checks both in ``create_close``).

A MogileFS storage is one class of a domain, and the aliases of a domain share its keys:
the files of a storage are the keys of its class. Copying out of one copies the keys of
its class only (the others are counted as another storage's); copying into one stores
every file in its class, and a key the domain already holds in another class is
reported and left alone. A folder keeps no class: a class travels with the alias, so
export each alias to a folder of its own and import each folder into its alias.

Tracker round trips: one ``file_info`` per file on each MogileFS side (size, MD5 and
class together), besides the transfer itself (``get_paths`` to read, ``create_open`` and
``create_close`` to store); a listing is one ``list_keys`` per 1000 keys. Names are
listed as they are copied, never held all at once. MogileFS replaces a key on store and
that ``file_info`` is the check that a name is free, made before the file is read: keep
other writers off the target's names while a copy into MogileFS runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import BinaryIO

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import Storage

from .exceptions import MogileFSError, TrackerUnavailableError
from .storage import MogileFSStorage

SPOOL_MAX = 8 * 1024 * 1024  # bytes of a file kept in memory before spilling to disk
CHUNK = 1024 * 1024


class Status(Enum):
    COPIED = "copied"
    SKIPPED = "already there"
    WOULD_COPY = "would copy"
    OTHER_CLASS = "another class"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    name: str
    status: Status
    size: int = 0
    error: str = ""


class CopyError(Exception):
    """One file could not be copied; the message says why (the run goes on)."""


@dataclass(frozen=True)
class Stat:
    """What a storage says of one file without reading it."""

    size: int
    md5: str | None = None  # kept by the storage (a MogileFS class with hashtype MD5)
    cls: str | None = None  # the file's MogileFS class; None elsewhere


def mogile_class(storage: MogileFSStorage) -> str:
    """The class ``storage`` stores new files in (the tracker's ``default`` when unset)."""
    return storage.config.mogile_class or "default"


class Side:
    """A storage as the copier uses it: any Django storage, through its public API."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def names(self, prefix: str = "") -> Iterator[str]:
        """Every file name starting with ``prefix``, through ``listdir``, recursively."""
        pending = [""]
        while pending:
            folder = pending.pop()
            dirs, files = self.storage.listdir(folder)
            for name in sorted(files):
                path = posixpath.join(folder, name)
                if path.startswith(prefix):
                    yield path
            subfolders = (posixpath.join(folder, d) for d in sorted(dirs, reverse=True))
            pending.extend(
                d for d in subfolders if d.startswith(prefix) or prefix.startswith(d + "/")
            )

    def stat(self, name: str) -> Stat | None:
        """Size (and what else is known) of ``name``, or None when there is no such file."""
        if not self.storage.exists(name):
            return None
        return Stat(self.storage.size(name))

    def foreign(self, stat: Stat) -> str:
        """Why an existing file belongs to another storage (empty: it is this one's)."""
        return ""

    def open(self, name: str) -> BinaryIO:
        return self.storage.open(name, "rb")

    def write(self, name: str, spool: BinaryIO, size: int) -> None:
        """Store ``spool`` as ``name`` and check the stored size; CopyError if not whole."""
        try:
            saved = self.storage.save(name, File(spool, name=name))
        except BaseException:
            self._remove(name)  # a half-written file (FileSystemStorage writes in place)
            raise
        if saved != name:  # somebody else wrote the name meanwhile: keep theirs, drop ours
            self._remove(saved)
            raise CopyError("appeared in the target while copying; not overwritten")
        there = self.storage.size(name)
        if there != size:
            self._remove(name)
            raise CopyError(f"the copy did not verify (size {there}; source size {size})")

    def _remove(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.storage.delete(name)


class MogileFSSide(Side):
    """A MogileFS storage: the keys of its class, ``file_info`` for what it knows of each."""

    storage: MogileFSStorage

    def __init__(self, storage: MogileFSStorage) -> None:
        super().__init__(storage)
        self.cls = mogile_class(storage)

    def names(self, prefix: str = "") -> Iterator[str]:
        return self.storage.client.list_keys(prefix)

    def stat(self, name: str) -> Stat | None:
        try:
            info = self.storage.file_info(name)
        except FileNotFoundError:
            return None
        kind, _, digest = (info.checksum or "").partition(":")
        md5 = digest.lower() if kind == "MD5" and digest else None
        return Stat(info.length, md5, info.cls or "default")

    def foreign(self, stat: Stat) -> str:
        if stat.cls is None or stat.cls == self.cls:
            return ""
        return f"class {stat.cls}, not {self.cls}"

    def open(self, name: str) -> BinaryIO:
        # The tracker's paths, read once: no path cache entry for a file read once.
        return self.storage.client.open(self.storage._key(name))

    def write(self, name: str, spool: BinaryIO, size: int) -> None:
        # The tracker checks size and MD5 in create_close, and a store that fails or is
        # interrupted before it leaves no key: nothing to check or remove afterwards.
        # _save, not save: the name is known to be free (one file_info less per file).
        self.storage._save(name, File(spool, name=name))


def side(storage: Storage) -> Side:
    return MogileFSSide(storage) if isinstance(storage, MogileFSStorage) else Side(storage)


class Copier:
    """Copies files from ``source`` to ``target``; see the module docstring for the rules."""

    def __init__(self, source: Storage, target: Storage, *, dry_run: bool = False) -> None:
        self.source, self.target, self.dry_run = side(source), side(target), dry_run

    def names(self, prefix: str = "") -> Iterator[str]:
        """The source's file names (MogileFS: every key of the domain, each class's)."""
        return self.source.names(prefix)

    def copy(self, name: str) -> Outcome:
        """Copy one file. ``TrackerUnavailableError`` and interrupts are raised as they are."""
        try:
            return self._copy(name)
        except TrackerUnavailableError:
            raise
        except CopyError as exc:
            return Outcome(name, Status.FAILED, error=str(exc))
        except (MogileFSError, OSError, SuspiciousFileOperation, ValueError) as exc:
            return Outcome(name, Status.FAILED, error=f"{type(exc).__name__}: {exc}")

    def _copy(self, name: str) -> Outcome:
        src = self.source.stat(name)
        if src is None:
            raise CopyError("no longer in the source")
        if self.source.foreign(src):
            return Outcome(name, Status.OTHER_CLASS, src.size)
        there = self.target.stat(name)
        if there is not None:
            self._check_equal(name, src, there)
            return Outcome(name, Status.SKIPPED, src.size)
        if self.dry_run:
            return Outcome(name, Status.WOULD_COPY, src.size)
        with self._spool(name, src) as spool:
            self.target.write(name, spool, src.size)
        return Outcome(name, Status.COPIED, src.size)

    def _check_equal(self, name: str, src: Stat, there: Stat) -> None:
        other = self.target.foreign(there)
        if other:
            raise CopyError(f"in the target in {other} (another storage's file); not changed")
        if there.size != src.size:
            raise CopyError(
                f"differs in the target (size {there.size}, source {src.size}); not overwritten"
            )
        if md5_of(self.target, name, there) != md5_of(self.source, name, src):
            raise CopyError("differs in the target (same size, other MD5); not overwritten")

    @contextlib.contextmanager
    def _spool(self, name: str, src: Stat) -> Iterator[BinaryIO]:
        """The source file read whole into a local temporary file, checked against ``src``."""
        digest = hashlib.md5()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX) as spool:
            with self.source.open(name) as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    digest.update(chunk)
                    spool.write(chunk)
            if spool.tell() != src.size:
                raise CopyError(f"the source gave {spool.tell()} of {src.size} bytes; not copied")
            if src.md5 and digest.hexdigest() != src.md5:
                raise CopyError(f"the source's bytes do not match its MD5 {src.md5}; not copied")
            spool.seek(0)
            yield spool


def md5_of(where: Side, name: str, stat: Stat) -> str:
    """The MD5 of ``name``: the one the storage keeps, else read and hashed."""
    if stat.md5:
        return stat.md5
    digest = hashlib.md5()
    with where.open(name) as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
