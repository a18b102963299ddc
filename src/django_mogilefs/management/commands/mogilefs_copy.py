"""``manage.py mogilefs_copy SOURCE TARGET``: copy every file between two storages.

SOURCE and TARGET are ``STORAGES`` aliases (``avatars``, ``default``...) or a local
folder as ``dir:PATH`` (a ``FileSystemStorage`` over it). Into MogileFS, out of it,
or between any two Django storages; names are kept. See
:mod:`django_mogilefs.copying` for what is skipped, refused and verified. Exits 1
when any file failed, 2 when the tracker became unreachable, 130 when interrupted;
a second run resumes where the first stopped.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage, InvalidStorageError, Storage, storages
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ...copying import Copier, Outcome, Status, walk
from ...exceptions import MogileFSError, TrackerUnavailableError


def open_storage(spec: str, *, must_exist: bool) -> Storage:
    """A ``STORAGES`` alias, or ``dir:PATH``; a clear ``CommandError`` for anything else."""
    if spec.startswith("dir:"):
        folder = Path(spec[4:]).expanduser()
        if must_exist and not folder.is_dir():
            raise CommandError(f"{spec}: no such folder")
        return FileSystemStorage(location=folder)
    try:
        return storages[spec]
    except InvalidStorageError:
        known = ", ".join(sorted(storages.backends))
        raise CommandError(
            f"Unknown storage {spec!r}: use an alias of STORAGES ({known}) or dir:PATH"
        ) from None


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (docker stop, kill) interrupts like Ctrl-C, so the current copy is cleaned up."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Command(BaseCommand):
    help = "Copy every file from one storage to another, keeping names (resumable, verified)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("source", help="STORAGES alias or dir:PATH to copy from")
        parser.add_argument("target", help="STORAGES alias or dir:PATH to copy to")
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would be copied, write nothing"
        )
        parser.add_argument("--prefix", default="", help="only names that start with this")
        parser.add_argument(
            "--no-progress", action="store_true", help="no progress bar (also off when no TTY)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["source"] == options["target"]:
            raise CommandError("SOURCE and TARGET are the same storage")
        source = open_storage(options["source"], must_exist=True)
        target = open_storage(options["target"], must_exist=False)
        copier = Copier(source, target, dry_run=options["dry_run"])
        try:
            names = list(walk(source, options["prefix"]))
        except (MogileFSError, OSError) as exc:
            raise CommandError(f"Cannot list {options['source']}: {exc}") from exc
        report = Report(self, options["source"], options["target"], options["dry_run"])
        bar = tqdm(
            total=len(names),
            unit="file",
            file=sys.stderr,
            disable=True if options["no_progress"] else None,
            dynamic_ncols=True,
        )
        try:
            with bar, sigterm_interrupts():
                for name in names:
                    outcome = copier.copy(name)
                    report.add(outcome)
                    if outcome.status is Status.FAILED:
                        bar.write(f"FAILED {name}: {outcome.error}", file=sys.stderr)
                    bar.update(1)
                    bar.set_postfix_str(report.throughput(), refresh=False)
        except TrackerUnavailableError as exc:
            report.summary()
            self.stderr.write(f"Stopped: {exc}. Run the command again to resume.")
            sys.exit(2)
        except KeyboardInterrupt:
            report.summary()
            self.stderr.write("Interrupted; no partial file was left. Run again to resume.")
            sys.exit(130)
        report.summary()
        if report.failed:
            raise CommandError(f"{len(report.failed)} file(s) failed (listed above)")


class Report:
    """Counts, bytes and failures of a run, and its summary lines."""

    def __init__(self, command: BaseCommand, source: str, target: str, dry_run: bool) -> None:
        self.command, self.source, self.target, self.dry_run = command, source, target, dry_run
        self.counts = dict.fromkeys(Status, 0)
        self.bytes = 0
        self.failed: list[Outcome] = []
        self.started = time.monotonic()

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status] += 1
        if outcome.status in (Status.COPIED, Status.WOULD_COPY):
            self.bytes += outcome.size
        if outcome.status is Status.FAILED:
            self.failed.append(outcome)

    def size(self) -> str:
        return tqdm.format_sizeof(self.bytes, "B", 1024)

    def rate(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return tqdm.format_sizeof(self.bytes / elapsed, "B/s", 1024)

    def throughput(self) -> str:
        return f"{self.size()}, {self.rate()}"

    def summary(self) -> None:
        elapsed = time.monotonic() - self.started
        verb = "Would copy" if self.dry_run else "Copied"
        done = self.counts[Status.WOULD_COPY if self.dry_run else Status.COPIED]
        out = self.command.stdout
        out.write(
            f"{verb} {done} file(s), {self.bytes:,} bytes, from {self.source} to {self.target} "
            f"in {elapsed:.1f} s ({self.rate()})"
        )
        out.write(f"Already there and equal: {self.counts[Status.SKIPPED]}")
        out.write(f"Failed: {len(self.failed)}")
        for outcome in self.failed:
            out.write(f"  {outcome.name}: {outcome.error}")
