"""Copying every file of one Django storage to another, keeping names (``mogilefs_copy``).

Safe to run again and again: a file already in the target with the same size and
MD5 is skipped, one that differs is reported and left alone (never overwritten).
Each file is read whole from the source into a local spool first, so a source that
fails half-way never reaches the target; a copy that fails or is interrupted while
being written is deleted again, and every copy is checked against the source's size
and, when the target keeps one (a MogileFS class with hashtype MD5), its MD5.
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
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    name: str
    status: Status
    size: int = 0
    error: str = ""


class CopyError(Exception):
    """One file could not be copied; the message says why (the run goes on)."""


def walk(storage: Storage, prefix: str = "") -> Iterator[str]:
    """Every file name in ``storage`` starting with ``prefix``.

    MogileFS keys are listed directly; any other storage through ``listdir``, recursively.
    """
    if isinstance(storage, MogileFSStorage):
        yield from storage.client.list_keys(prefix)
        return
    pending = [""]
    while pending:
        folder = pending.pop()
        dirs, files = storage.listdir(folder)
        for name in sorted(files):
            path = posixpath.join(folder, name)
            if path.startswith(prefix):
                yield path
        subfolders = (posixpath.join(folder, d) for d in sorted(dirs, reverse=True))
        pending.extend(d for d in subfolders if d.startswith(prefix) or prefix.startswith(d + "/"))


def stored_md5(storage: Storage, name: str) -> str | None:
    """The MD5 the target keeps for ``name`` (a MogileFS class with hashtype MD5), or None."""
    if not isinstance(storage, MogileFSStorage):
        return None
    checksum = storage.file_info(name).checksum or ""
    kind, _, digest = checksum.partition(":")
    return digest.lower() if kind == "MD5" and digest else None


def md5_of(storage: Storage, name: str) -> str:
    """The MD5 of ``name``: the one the storage keeps, else read and hashed."""
    known = stored_md5(storage, name)
    if known:
        return known
    digest = hashlib.md5()
    with storage.open(name, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Copier:
    """Copies files from ``source`` to ``target``; see the module docstring for the rules."""

    def __init__(self, source: Storage, target: Storage, *, dry_run: bool = False) -> None:
        self.source, self.target, self.dry_run = source, target, dry_run

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
        size = self.source.size(name)
        if self.target.exists(name):
            self._check_equal(name, size)
            return Outcome(name, Status.SKIPPED, size)
        if self.dry_run:
            return Outcome(name, Status.WOULD_COPY, size)
        with self._spool(name, size) as (spool, md5):
            self._write(name, spool)
        self._verify(name, size, md5)
        return Outcome(name, Status.COPIED, size)

    def _check_equal(self, name: str, size: int) -> None:
        there = self.target.size(name)
        if there != size:
            raise CopyError(f"differs in the target (size {there}, source {size}); not overwritten")
        if md5_of(self.target, name) != md5_of(self.source, name):
            raise CopyError("differs in the target (same size, other MD5); not overwritten")

    @contextlib.contextmanager
    def _spool(self, name: str, size: int) -> Iterator[tuple[BinaryIO, str]]:
        """The source file read whole into a local temporary file, and its MD5."""
        digest = hashlib.md5()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX) as spool:
            with self.source.open(name, "rb") as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    digest.update(chunk)
                    spool.write(chunk)
            if spool.tell() != size:
                raise CopyError(f"the source gave {spool.tell()} of {size} bytes; not copied")
            spool.seek(0)
            yield spool, digest.hexdigest()

    def _write(self, name: str, spool: BinaryIO) -> None:
        try:
            saved = self.target.save(name, File(spool, name=name))
        except BaseException:
            self._remove(name)  # a half-written file (FileSystemStorage writes in place)
            raise
        if saved != name:  # somebody else wrote the name meanwhile: keep theirs, drop ours
            self._remove(saved)
            raise CopyError("appeared in the target while copying; not overwritten")

    def _verify(self, name: str, size: int, md5: str) -> None:
        there = self.target.size(name)
        stored = stored_md5(self.target, name)
        if there != size or (stored is not None and stored != md5):
            self._remove(name)
            found = f"size {there}" + (f", MD5 {stored}" if stored else "")
            raise CopyError(f"the copy did not verify ({found}; source size {size}, MD5 {md5})")

    def _remove(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.target.delete(name)
