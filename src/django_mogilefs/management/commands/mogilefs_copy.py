"""``manage.py mogilefs_copy SOURCE TARGET``: copy every file between two storages.

SOURCE and TARGET are ``STORAGES`` aliases (``avatars``, ``default``...) or a local
folder as ``dir:PATH`` (a ``FileSystemStorage`` over it). Into MogileFS, out of it,
or between any two Django storages; names are kept, and a MogileFS alias stands for
its class. See :mod:`django_mogilefs.copying` for what is skipped, refused and
verified. Exits 1 when any file failed, 2 when the tracker became unreachable, 130
when interrupted; a second run resumes where the first stopped. The progress bar is
the ``progress`` extra's (tqdm); ``--no-progress`` needs nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.files.storage import FileSystemStorage, InvalidStorageError, Storage, storages
from django.core.management.base import BaseCommand, CommandError

from ...copying import Copier, MogileFSSide, Outcome, Status
from ...exceptions import MogileFSError
from ...extras import require

IEC_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


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


def size_text(count: float) -> str:
    """Bytes in binary units, labelled as such: ``0 B``, ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    for unit in IEC_UNITS:
        if abs(count) < 1024 or unit == IEC_UNITS[-1]:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class NoBar:
    """The part of a tqdm bar the copy uses, when there is no bar: failures still printed."""

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def write(self, text: str, file: Any = None) -> None:
        print(text, file=file or sys.stderr)

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass


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
            "--no-progress",
            action="store_true",
            help="no progress bar (also off when no TTY; the bar needs django-mogilefs[progress])",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with sigterm_interrupts():
            try:
                copier, names, bar = self.start(options)
            except KeyboardInterrupt:
                self.stderr.write("Interrupted before anything was copied.")
                sys.exit(130)
            self.run(copier, names, bar, options)

    def start(self, options: dict[str, Any]) -> tuple[Copier, Iterator[str], Any]:
        """The copier, the source's names (listed as they are copied) and the progress bar,
        of their count (a listing pass of its own, so that the names are never all held
        at once)."""
        if options["source"] == options["target"]:
            raise CommandError("SOURCE and TARGET are the same storage")
        source = open_storage(options["source"], must_exist=True)
        target = open_storage(options["target"], must_exist=False)
        copier = Copier(source, target, dry_run=options["dry_run"])
        show_bar = not options["no_progress"] and sys.stderr.isatty()
        # Before the counting pass, which can be long: a missing extra is said at once.
        tqdm = require("tqdm", extra="progress", error=CommandError).tqdm if show_bar else None
        try:
            total = sum(1 for _ in copier.names(options["prefix"])) if tqdm else 0
            names = copier.names(options["prefix"])
            first = list(itertools.islice(names, 1))  # a tracker that does not answer: now
        except (MogileFSError, OSError) as exc:
            raise CommandError(f"Cannot list {options['source']}: {exc}") from exc
        names = itertools.chain(first, names)
        if tqdm is None:
            return copier, names, NoBar()
        return copier, names, tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True)

    def run(self, copier: Copier, names: Iterator[str], bar: Any, options: dict[str, Any]) -> None:
        report = Report(
            self,
            options["source"],
            options["target"],
            options["dry_run"],
            by_class=isinstance(copier.source, MogileFSSide),
        )
        try:
            with bar:
                for name in names:
                    outcome = copier.copy(name)
                    report.add(outcome)
                    if outcome.status is Status.FAILED:
                        bar.write(f"FAILED {name}: {outcome.error}", file=sys.stderr)
                    bar.update(1)
                    bar.set_postfix_str(report.progress(), refresh=False)
        except (MogileFSError, OSError) as exc:  # the listing, or the tracker, gone mid-way
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
    """Counts, bytes and failures of a run, and its progress and summary lines."""

    def __init__(
        self, command: BaseCommand, source: str, target: str, dry_run: bool, *, by_class: bool
    ) -> None:
        self.command, self.source, self.target, self.dry_run = command, source, target, dry_run
        self.by_class = by_class
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

    @property
    def done(self) -> int:
        return self.counts[Status.WOULD_COPY if self.dry_run else Status.COPIED]

    def rate(self) -> str:
        """Bytes written per second, or empty when nothing has been written."""
        if self.dry_run or not self.bytes:
            return ""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return f"{size_text(self.bytes / elapsed)}/s"

    def progress(self) -> str:
        """The bar's postfix, in the summary's units."""
        rate = self.rate()
        verb = "would copy" if self.dry_run else "copied"
        parts = [f"{verb} {self.done} ({size_text(self.bytes)}{', ' + rate if rate else ''})"]
        if self.counts[Status.SKIPPED]:
            parts.append(f"{self.counts[Status.SKIPPED]} already there")
        if self.counts[Status.OTHER_CLASS]:
            parts.append(f"{self.counts[Status.OTHER_CLASS]} in another class")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts)

    def summary(self) -> None:
        elapsed = time.monotonic() - self.started
        verb = "Would copy" if self.dry_run else "Copied"
        rate = f" ({self.rate()})" if self.rate() else ""
        out = self.command.stdout
        out.write(
            f"{verb} {self.done} file(s), {self.bytes:,} bytes ({size_text(self.bytes)}), "
            f"from {self.source} to {self.target} in {elapsed:.1f} s{rate}"
        )
        out.write(f"Already there and equal: {self.counts[Status.SKIPPED]}")
        if self.by_class:
            out.write(f"In another class (another storage's): {self.counts[Status.OTHER_CLASS]}")
        out.write(f"Failed: {len(self.failed)}")
        for outcome in self.failed:
            out.write(f"  {outcome.name}: {outcome.error}")
