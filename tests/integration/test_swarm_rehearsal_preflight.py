"""deploy/swarm/rehearse.py on a machine that cannot run it: it says what is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from static import compose_file as cf

pytestmark = pytest.mark.integration

REHEARSE = cf.ROOT / "deploy" / "swarm" / "rehearse.py"


def rehearse(tmp_path: Path, docker: str | None) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if docker is not None:
        (bin_dir / "docker").write_text(docker)
        (bin_dir / "docker").chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, str(REHEARSE)], env=env, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    "docker",
    [None, "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"],
    ids=["no docker command", "no engine"],
)
def test_without_an_engine_it_names_what_is_missing_and_starts_nothing(
    tmp_path: Path, docker: str | None
) -> None:
    result = rehearse(tmp_path, docker)
    assert result.returncode == 2, result.stderr
    assert "no Docker engine is reachable" in result.stderr
    assert "scripts/docker-engine.sh" in result.stderr
    assert "Traceback" not in result.stderr
