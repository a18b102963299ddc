"""Every shell script in the repository passes shellcheck."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from . import compose_file as cf

pytestmark = pytest.mark.static

SKIP = {".git", ".venv", "node_modules", "var"}
# What the images run: they must fail loudly, not half-way.
ENTRYPOINTS = [
    "mogile/entrypoint",
    "mogile/healthcheck",
    "perlbal/start",
    "app/entrypoint",
    "app/start",
    "app/start-media",
]


def shell_scripts() -> list[Path]:
    scripts = []
    for path in cf.ROOT.rglob("*"):
        if not path.is_file() or SKIP.intersection(path.relative_to(cf.ROOT).parts):
            continue
        if path.suffix == ".sh":
            scripts.append(path)
            continue
        with path.open("rb") as fh:
            first = fh.readline(100)
        if first.startswith(b"#!") and (b"bash" in first or first.rstrip().endswith(b"/sh")):
            scripts.append(path)
    return sorted(scripts)


def test_the_known_scripts_are_found() -> None:
    found = {str(p.relative_to(cf.ROOT)) for p in shell_scripts()}
    expected = set(ENTRYPOINTS) | {
        "mysql/initdb.d/10-databases.sh",
        "standin-images/build",
        "standin-images/mysql/docker-entrypoint.sh",
        "standin-images/memcached/docker-entrypoint.sh",
        ".ci/fake-mogile/bin/mogilefsd",
        ".ci/fake-mogile/bin/mogstored",
        ".ci/fake-mogile/bin/mogdbsetup",
        ".ci/persistence-check",
        ".ci/run",
        "scripts/docker-engine.sh",
        "scripts/docker-preflight.sh",
    }
    assert expected <= found


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(cf.ROOT)))
def test_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: apt-get install shellcheck"
    result = subprocess.run(
        [shellcheck, "--external-sources", str(script)],
        capture_output=True,
        text=True,
        check=False,
        cwd=script.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ENTRYPOINTS)
def test_entrypoints_are_executable_and_strict(script: str) -> None:
    path = cf.ROOT / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    assert "set -o errexit -o pipefail -o nounset" in path.read_text()
