"""app/entrypoint's start and stop: waiting for what the site needs, a delayed SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from ownenv import own_environ

pytestmark = pytest.mark.integration

ENTRYPOINT = Path(__file__).resolve().parents[2] / "app" / "entrypoint"


def run(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ENTRYPOINT), *argv], env=own_environ(**env), capture_output=True, text=True, timeout=30
    )


def test_it_waits_for_what_it_needs_and_gives_up_saying_what() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: refused
        result = run("true", WAIT_FOR=f"127.0.0.1:{port}", WAIT_TIMEOUT="2")
    assert result.returncode == 1
    assert f"waiting for 127.0.0.1:{port}" in result.stderr
    assert f"127.0.0.1:{port} accepted no connection in 2s" in result.stderr
    assert "is not host:port" in run("true", WAIT_FOR="nocolon").stderr


def test_it_runs_the_command_once_everything_answers() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        result = run("echo", "started", WAIT_FOR=f"127.0.0.1:{server.getsockname()[1]}")
    assert (result.returncode, result.stdout) == (0, "started\n")


def test_sigterm_reaches_the_server_after_the_shutdown_delay() -> None:
    server = "trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done"
    proc = subprocess.Popen(
        [str(ENTRYPOINT), "bash", "-c", server],
        env=own_environ(SHUTDOWN_DELAY="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "up\n"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline() == "got TERM\n"
        took = time.monotonic() - sent
        assert proc.wait(10) == 0
        assert 2 <= took < 6, f"the server got SIGTERM {took:.1f} s after the entrypoint"
        assert "stopping in 2s" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_a_bad_shutdown_delay_is_refused() -> None:
    result = run("true", SHUTDOWN_DELAY="soon")
    assert result.returncode == 1
    assert "SHUTDOWN_DELAY: 'soon' is not a whole number of seconds" in result.stderr
