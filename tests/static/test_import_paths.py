"""The site, the scripts and the images import django_mogilefs as an installed package.

Nothing in app/, scripts/, the Dockerfiles, the entrypoints or the Makefile may put a
directory on the import path (``sys.path`` edits, ``PYTHONPATH=``): the package is
installed (``make deps``, the images' ``pip install``) and the rest runs from where
Python's own rules find it (a script's directory, gunicorn's working directory).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
PATCHING = re.compile(
    r"sys\.path\s*(\[|\.insert|\.append|\.extend|\+=|=)"  # sys.path edited
    r"|PYTHONPATH\s*="  # PYTHONPATH set in a Dockerfile's ENV or a shell
    r"|[\"']PYTHONPATH[\"']\s*(:|\]\s*=)"  # ... or in an environment dict
    r"|^\s*pythonpath\s*=",  # gunicorn's own pythonpath setting
    re.MULTILINE,
)


def checked_files() -> list[Path]:
    files = [p for p in (ROOT / "app").rglob("*") if p.is_file() and p.suffix != ".pyc"]
    files += [p for p in (ROOT / "scripts").rglob("*") if p.is_file() and p.suffix != ".pyc"]
    files += [*ROOT.glob("**/Dockerfile"), ROOT / "Makefile"]
    files += [*(ROOT / ".ci" / "fake-mogile" / "bin").iterdir(), ROOT / "mogile" / "entrypoint"]
    return sorted(p for p in set(files) if ".venv" not in p.parts and _is_text(p))


def _is_text(path: Path) -> bool:
    return b"\0" not in path.read_bytes()[:4096]


def test_the_checked_files_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in checked_files()}
    assert {"app/Dockerfile", "app/start", "scripts/bootstrap.py", "scripts/dev.py"} <= names
    assert {".ci/fake-mogile/Dockerfile", ".ci/fake-mogile/bin/mogilefsd", "Makefile"} <= names


def test_nothing_patches_the_import_path() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
        for path in checked_files()
        for text in [path.read_text(errors="replace")]
        for m in PATCHING.finditer(text)
    ]
    assert found == []


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in (
        "sys.path.insert(0, 'app')",
        "sys.path[:0] = [root]",
        "    PYTHONPATH=/srv/app",
        'env["PYTHONPATH"] = str(ROOT)',
        '{"PYTHONPATH": str(APP_DIR)}',
        "pythonpath = 'app'",
    ):
        assert PATCHING.search(line), line
    # Dropping an inherited PYTHONPATH (devstack's clean environment) is not patching.
    assert not PATCHING.search('drop = ("DJANGO_", "PYTHONPATH")')
