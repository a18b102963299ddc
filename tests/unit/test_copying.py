"""The copier between plain Django storages, and the copy command's progress and summary."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage
from django.core.management.base import BaseCommand
from django_mogilefs.copying import Copier, Outcome, Status
from django_mogilefs.management.commands import mogilefs_copy as copy_command
from django_mogilefs.management.commands.mogilefs_copy import Report, size_text

pytestmark = pytest.mark.unit


@pytest.fixture
def pair() -> tuple[InMemoryStorage, InMemoryStorage]:
    source, target = InMemoryStorage(), InMemoryStorage()
    for name, body in {"a.txt": b"alpha", "d/b.txt": b"bravo", "d/e/c.txt": b""}.items():
        source.save(name, ContentFile(body))
    return source, target


def test_copies_then_skips_and_never_overwrites(pair) -> None:
    source, target = pair
    copier = Copier(source, target)
    assert sorted(copier.names()) == ["a.txt", "d/b.txt", "d/e/c.txt"]
    assert [copier.copy(n).status for n in sorted(copier.names())] == [Status.COPIED] * 3
    assert target.open("d/b.txt").read() == b"bravo"
    assert copier.copy("d/b.txt") == Outcome("d/b.txt", Status.SKIPPED, 5)

    target.delete("a.txt")
    target.save("a.txt", ContentFile(b"ALPHA"))  # same size, other bytes
    target.delete("d/b.txt")
    target.save("d/b.txt", ContentFile(b"bra"))
    assert copier.copy("a.txt").error == (
        "differs in the target (same size, other MD5); not overwritten"
    )
    assert copier.copy("d/b.txt").error == (
        "differs in the target (size 3, source 5); not overwritten"
    )
    assert target.open("a.txt").read() == b"ALPHA" and target.open("d/b.txt").read() == b"bra"


def test_a_dry_run_and_a_vanished_file(pair) -> None:
    source, target = pair
    copier = Copier(source, target, dry_run=True)
    assert copier.copy("a.txt") == Outcome("a.txt", Status.WOULD_COPY, 5)
    assert not target.exists("a.txt")
    assert copier.copy("gone.txt") == Outcome(
        "gone.txt", Status.FAILED, error="no longer in the source"
    )


def test_names_under_a_prefix(pair) -> None:
    source, target = pair
    assert sorted(Copier(source, target).names("d/")) == ["d/b.txt", "d/e/c.txt"]
    assert list(Copier(source, target).names("d/e")) == ["d/e/c.txt"]


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 << 40, "3.0 TiB"),
    ],
)
def test_sizes_are_in_binary_units_labelled_as_such(count, text) -> None:
    assert size_text(count) == text


class Clock:
    """Stands for time.monotonic in the command's module."""

    def __init__(self, monkeypatch) -> None:
        self.now = 100.0
        monkeypatch.setattr(copy_command.time, "monotonic", lambda: self.now)


def report(dry_run: bool = False, *, by_class: bool = False) -> tuple[Report, io.StringIO]:
    out = io.StringIO()
    return Report(BaseCommand(stdout=out), "src", "dst", dry_run, by_class=by_class), out


def test_the_bar_and_the_summary_give_bytes_in_the_same_units(monkeypatch) -> None:
    clock = Clock(monkeypatch)
    r, out = report()
    r.add(Outcome("big", Status.COPIED, 3 * 1024**2 + 512 * 1024))
    r.add(Outcome("other", Status.SKIPPED, 10))
    clock.now += 2
    assert r.progress() == "copied 1 (3.5 MiB, 1.8 MiB/s), 1 already there"
    r.summary()
    assert out.getvalue().splitlines()[0] == (
        "Copied 1 file(s), 3,670,016 bytes (3.5 MiB), from src to dst in 2.0 s (1.8 MiB/s)"
    )


def test_a_run_that_only_skips_shows_no_rate() -> None:
    r, out = report(by_class=True)
    for n in range(3):
        r.add(Outcome(f"f{n}", Status.SKIPPED, 100))
    r.add(Outcome("t", Status.OTHER_CLASS, 100))
    assert r.progress() == "copied 0 (0 B), 3 already there, 1 in another class"
    r.summary()
    lines = out.getvalue().splitlines()
    assert re.fullmatch(
        r"Copied 0 file\(s\), 0 bytes \(0 B\), from src to dst in \d+\.\d s", lines[0]
    )
    assert lines[1:] == [
        "Already there and equal: 3",
        "In another class (another storage's): 1",
        "Failed: 0",
    ]
    assert "/s" not in out.getvalue()


def test_a_dry_run_says_would_and_gives_no_rate() -> None:
    r, out = report(dry_run=True)
    r.add(Outcome("f", Status.WOULD_COPY, 2048))
    assert r.progress() == "would copy 1 (2.0 KiB)"
    r.summary()
    assert "Would copy 1 file(s), 2,048 bytes (2.0 KiB), from src to dst in " in out.getvalue()
    assert "/s" not in out.getvalue()


def _copy_with_a_tty(monkeypatch, tmp_path, *extra: str) -> None:
    from django.core.management import call_command

    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "a.txt").write_bytes(b"alpha")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)  # a bar is wanted
    call_command(
        "mogilefs_copy",
        f"dir:{tmp_path / 'src'}",
        f"dir:{tmp_path / 'dst'}",
        *extra,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


def test_the_progress_bar_without_tqdm_names_the_extra(monkeypatch, tmp_path) -> None:
    from django.core.management.base import CommandError

    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)
    with pytest.raises(CommandError, match=r"pip install 'django-mogilefs\[progress\]'"):
        _copy_with_a_tty(monkeypatch, tmp_path)
    assert not (tmp_path / "dst").exists(), "refused before copying anything"
    _copy_with_a_tty(monkeypatch, tmp_path, "--no-progress")  # no bar: no tqdm needed
    assert (tmp_path / "dst" / "a.txt").read_bytes() == b"alpha"


def test_the_progress_bar_is_tqdm_s(monkeypatch, tmp_path, capsys) -> None:
    _copy_with_a_tty(monkeypatch, tmp_path)
    assert (tmp_path / "dst" / "a.txt").read_bytes() == b"alpha"
    assert "1/1" in capsys.readouterr().err  # tqdm's counter on sys.stderr
