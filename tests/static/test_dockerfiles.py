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


def _context(build: str | dict[str, str]) -> tuple[Path, Path]:
    """(Dockerfile, context) of one compose ``build:``; paths relative to the project."""
    if isinstance(build, str):
        build = {"context": build}
    context = (cf.ROOT / build["context"]).resolve()
    return (context / build.get("dockerfile", "Dockerfile")).resolve(), context


def build_contexts() -> dict[Path, Path]:
    """Dockerfile -> build context: compose.yaml's, CI's override's, the stand-in images
    (standin-images/build builds each in its own folder) and the swarm rehearsal's
    machine (deploy/swarm/rehearse.py builds it in its folder)."""
    builds = [s["build"] for s in cf.services().values() if "build" in s]
    builds += [s["build"] for s in cf.ci_override()["services"].values() if "build" in s]
    contexts = dict(_context(b) for b in builds)
    for dockerfile in (cf.ROOT / "standin-images").glob("*/Dockerfile"):
        contexts[dockerfile.resolve()] = dockerfile.parent.resolve()
    rehearsal = cf.ROOT / "deploy" / "swarm" / "rehearsal"
    assert 'HERE / "rehearsal"' in (rehearsal.parent / "rehearse.py").read_text()
    contexts[(rehearsal / "Dockerfile").resolve()] = rehearsal.resolve()
    return contexts


def dockerfiles() -> list[Path]:
    skip = {".git", ".venv", "node_modules"}
    return sorted(
        p
        for p in cf.ROOT.rglob("Dockerfile")
        if not skip.intersection(p.relative_to(cf.ROOT).parts)
    )


def test_every_dockerfile_is_built_by_compose_ci_or_the_standin_script() -> None:
    assert set(build_contexts()) == set(dockerfiles())
    assert {str(p.parent.relative_to(cf.ROOT)) for p in dockerfiles()} == {
        "app",
        "mogile",
        "perlbal",
        ".ci/fake-mogile",
        "deploy/swarm/rehearsal",
        "standin-images/memcached",
        "standin-images/mysql",
        "standin-images/python",
    }


def test_no_dockerfile_needs_a_frontend_image() -> None:
    """A ``# syntax=`` line makes BuildKit pull a frontend image: no build offline."""
    for dockerfile in dockerfiles():
        assert not re.search(r"^#\s*syntax=", dockerfile.read_text(), re.M | re.I), dockerfile


def test_the_standin_script_builds_every_standin_and_the_ones_compose_needs() -> None:
    script = (cf.ROOT / "standin-images" / "build").read_text()
    built = set(re.findall(r"^derived_image (\S+) (\S+)$", script, re.M))
    folders = {p.parent.name for p in (cf.ROOT / "standin-images").glob("*/Dockerfile")}
    assert {folder for _, folder in built} == folders
    preflight = (cf.ROOT / "scripts" / "docker-preflight.sh").read_text()
    (listed,) = re.findall(r"^BASE_IMAGES=\((.*)\)$", preflight, re.M)
    assert set(listed.split()) == {tag for tag, _ in built} | {"debian:bookworm-slim"}
    # Every image compose pulls, and every FROM default, is one of them.
    pulled = {s["image"] for s in cf.services().values() if "build" not in s}
    defaults = set()
    for dockerfile in dockerfiles():
        defaults |= set(re.findall(r"^ARG \w+_IMAGE=(\S+)$", dockerfile.read_text(), re.M))
    assert pulled | defaults <= set(listed.split())


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
    assert sources or not re.search(r"^(COPY|ADD)\b", dockerfile.read_text(), re.M)
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
