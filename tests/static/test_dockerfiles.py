"""Dockerfiles: hadolint-clean, and everything they COPY exists in their build context."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from . import compose_file as cf

pytestmark = pytest.mark.static

HADOLINT = Path(sys.executable).with_name("hadolint")


def build_contexts() -> dict[Path, Path]:
    """Dockerfile -> build context, as compose.yaml declares them."""
    contexts = {}
    for service in cf.services().values():
        build = service.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = (cf.ROOT / build["context"]).resolve()
        contexts[(context / build.get("dockerfile", "Dockerfile")).resolve()] = context
    return contexts


def dockerfiles() -> list[Path]:
    skip = {".git", ".venv", "node_modules"}
    return sorted(
        p
        for p in cf.ROOT.rglob("Dockerfile")
        if not skip.intersection(p.relative_to(cf.ROOT).parts)
    )


def test_every_dockerfile_is_built_by_compose() -> None:
    assert set(build_contexts()) == set(dockerfiles())
    assert {p.parent.name for p in dockerfiles()} == {"app", "mogile", "perlbal"}


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: str(p.relative_to(cf.ROOT)))
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(HADOLINT), str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda p: str(p.relative_to(cf.ROOT)))
def test_copied_files_exist_in_the_build_context(dockerfile: Path) -> None:
    context = build_contexts()[dockerfile]
    sources = []
    for line in re.findall(r"^(?:COPY|ADD)\s+(.+)$", dockerfile.read_text(), re.MULTILINE):
        words = [w for w in shlex.split(line) if not w.startswith("--")]
        if "--from=" not in line:
            sources += words[:-1]
    assert sources
    for source in sources:
        assert (context / source).exists(), f"{dockerfile}: COPY {source} (context {context})"


def test_mogilefs_tarballs_are_pinned_by_sha512() -> None:
    sums = (cf.ROOT / "mogile" / "SHA512SUMS").read_text().split("\n")
    entries = dict(reversed(line.split()) for line in sums if line.strip())
    assert set(entries) == {
        "MogileFS-Server-2.73.tar.gz",
        "MogileFS-Client-1.17.tar.gz",
        "MogileFS-Utils-2.29.tar.gz",
    }
    assert all(re.fullmatch(r"[0-9a-f]{128}", digest) for digest in entries.values())
    dockerfile = (cf.ROOT / "mogile" / "Dockerfile").read_text()
    assert "sha512sum --check --strict SHA512SUMS" in dockerfile
    assert "cpanm" not in dockerfile


def test_images_run_as_unprivileged_users() -> None:
    for name in ("app", "perlbal"):
        users = re.findall(r"^USER\s+(\S+)", (cf.ROOT / name / "Dockerfile").read_text(), re.M)
        assert users and all(not u.startswith(("0", "root")) for u in users), name
    # The mogile image starts as root to prepare volumes, then drops privileges.
    entrypoint = (cf.ROOT / "mogile" / "entrypoint").read_text()
    assert "setpriv --reuid" in entrypoint
