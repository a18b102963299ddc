"""scripts/docker-preflight.sh (`make up`'s first step): each missing piece is named.

A stand-in ``docker`` on the PATH plays each machine: no engine, an old engine, no
Compose v2, an old Compose, no registry for a base image, everything in place.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from static import compose_file as cf

pytestmark = pytest.mark.integration

PREFLIGHT = cf.ROOT / "scripts" / "docker-preflight.sh"

FAKE_DOCKER = """#!/usr/bin/env bash
# $FAKE_* say how this machine behaves.
fail() { echo "$1" >&2; exit 1; }
case "$1 $2" in
"info "*) [[ ${FAKE_ENGINE:-up} == up ]] || fail "Cannot connect to the Docker daemon" ;;
"version --format") echo "${FAKE_ENGINE_VERSION:-20.10.24+dfsg1}" ;;
"compose version")
    [[ -n ${FAKE_COMPOSE_VERSION-2.26.1} ]] || fail "'compose' is not a docker command."
    echo "${FAKE_COMPOSE_VERSION-2.26.1}" ;;
"image inspect") [[ " ${FAKE_IMAGES:-} " == *" $3 "* ]] ;;
"pull --quiet")
    [[ ${FAKE_REGISTRY:-down} == up ]] || fail "lookup registry-1.docker.io: no such host" ;;
*) fail "fake docker: unexpected $*" ;;
esac
"""
ALL_IMAGES = "debian:bookworm-slim python:3.11-slim-bookworm mysql:8.4 memcached:1.6"


def preflight(tmp_path: Path, **machine: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), **machine}
    return subprocess.run(
        [str(PREFLIGHT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_a_ready_machine_passes_and_says_what_it_found(tmp_path: Path) -> None:
    result = preflight(tmp_path, FAKE_IMAGES=ALL_IMAGES)
    assert result.returncode == 0, result.stderr
    assert "Docker Engine 20.10.24+dfsg1, Compose 2.26.1: OK" in result.stdout


def test_no_docker_command_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    bash = "/bin/bash"
    result = subprocess.run(
        [bash, str(PREFLIGHT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 1
    assert "the docker command is not installed" in result.stderr
    assert "apt-get install docker.io" in result.stderr and "make dev" in result.stderr


@pytest.mark.parametrize(
    ("machine", "message"),
    [
        ({"FAKE_ENGINE": "down"}, "no Docker engine is reachable"),
        ({"FAKE_ENGINE_VERSION": "19.03.15"}, "Docker Engine 19.03.15 is too old: 20.10"),
        ({"FAKE_COMPOSE_VERSION": ""}, "Docker Compose v2 is not installed"),
        ({"FAKE_COMPOSE_VERSION": "v2.20.2"}, "Docker Compose v2.20.2 is too old: 2.26"),
        ({"FAKE_IMAGES": "debian:bookworm-slim"}, "cannot pull python:3.11-slim-bookworm"),
    ],
)
def test_each_missing_piece_is_named(tmp_path: Path, machine: dict, message: str) -> None:
    result = preflight(tmp_path, **{"FAKE_IMAGES": ALL_IMAGES, **machine})
    assert result.returncode == 1
    assert message in result.stderr, result.stderr


def test_without_a_registry_it_points_to_the_standin_images(tmp_path: Path) -> None:
    result = preflight(tmp_path)
    assert "no container registry is reachable" in result.stderr
    assert "no such host" in result.stderr  # the engine's own words
    assert "make standin-images" in result.stderr
    assert (cf.ROOT / "standin-images" / "README.md").is_file()


def test_a_missing_image_is_pulled_when_a_registry_answers(tmp_path: Path) -> None:
    result = preflight(tmp_path, FAKE_REGISTRY="up")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Pulling ") == 4
