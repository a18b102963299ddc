"""mogile/entrypoint and mogile/healthcheck, run natively with stand-in daemons."""

from __future__ import annotations

import functools
import getpass
import http.server
import os
import re
import socket
import socketserver
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_mogilefs.testing import free_port
from ownenv import own_environ
from static import compose_file as cf

pytestmark = pytest.mark.integration

ENTRYPOINT = cf.ROOT / "mogile" / "entrypoint"
HEALTHCHECK = cf.ROOT / "mogile" / "healthcheck"
STUB = """#!/usr/bin/env bash
echo "RAN $(basename "$0") $*"
for arg; do [[ $arg == --config=* ]] && cat "${arg#--config=}"; done
exit 0
"""


@pytest.fixture
def db_port() -> Iterator[int]:
    """Something listening where the entrypoint waits for MySQL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path, db_port: int) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("mogilefsd", "mogstored", "mogdbsetup"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "conf").mkdir()
    (tmp_path / "db_password").write_text("s3cret pass\n")
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MOGILE_USER": getpass.getuser(),
        "MOGILE_CONF_DIR": str(tmp_path / "conf"),
        "MOGILEFS_DB_HOST": "127.0.0.1",
        "MOGILEFS_DB_PORT": str(db_port),
        "MOGILEFS_DB_PASSWORD_FILE": str(tmp_path / "db_password"),
        "WAIT_TIMEOUT": "2",
    }


def run(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def config(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines()[1:] if not line.startswith("#")]
    assert all(re.fullmatch(r"\w+ = \S.*", line) for line in lines), lines  # no "key ="
    return dict(line.split(" = ", 1) for line in lines)


def test_tracker_config_comes_from_the_environment(env: dict[str, str], tmp_path: Path) -> None:
    result = run(ENTRYPOINT, "mogilefsd", env=env)
    assert result.returncode == 0, result.stderr
    conf_file = tmp_path / "conf" / "mogilefsd.conf"
    assert result.stdout.startswith(f"RAN mogilefsd --config={conf_file}")
    conf = config(result.stdout)
    port = env["MOGILEFS_DB_PORT"]
    assert conf["db_dsn"] == f"DBI:mysql:mogilefs;host=127.0.0.1;port={port}"
    assert (conf["db_user"], conf["db_pass"]) == ("mogile", "s3cret pass")
    assert (conf["listen"], conf["daemonize"], conf["mogstored_stream_port"]) == (
        "0.0.0.0:7001",
        "0",
        "7501",
    )
    assert stat.S_IMODE(conf_file.stat().st_mode) == 0o600  # it holds the password


def test_tracker_needs_exactly_one_password_source(env: dict[str, str]) -> None:
    del env["MOGILEFS_DB_PASSWORD_FILE"]
    result = run(ENTRYPOINT, "mogilefsd", env=env)
    assert result.returncode == 1
    assert "set MOGILEFS_DB_PASSWORD or MOGILEFS_DB_PASSWORD_FILE" in result.stderr
    result = run(ENTRYPOINT, "mogilefsd", env={**env, "MOGILEFS_DB_PASSWORD_FILE": "/nonexistent"})
    assert result.returncode == 1
    assert "is not a readable file" in result.stderr


def test_tracker_waits_for_the_database_with_a_deadline(env: dict[str, str]) -> None:
    closed_port = free_port()
    result = run(
        ENTRYPOINT,
        "mogilefsd",
        env={**env, "MOGILEFS_DB_PORT": str(closed_port), "WAIT_TIMEOUT": "1"},
    )
    assert result.returncode == 1
    assert f"127.0.0.1:{closed_port} refused connections for 1s" in result.stderr
    assert "RAN" not in result.stdout


def test_mogdbsetup_only_creates_the_schema_as_the_mogile_user(env: dict[str, str]) -> None:
    result = run(ENTRYPOINT, "mogdbsetup", env=env)
    assert result.returncode == 0, result.stderr
    args = result.stdout.split("\n")[0].split()
    assert args[:4] == ["RAN", "mogdbsetup", "--yes", "--type=MySQL"]
    assert "--dbuser=mogile" in args and "--dbname=mogilefs" in args
    assert "--dbpass=s3cret" in args  # "s3cret pass" is one argument, split here by .split()
    assert not [a for a in args if a.startswith("--dbroot")]


def test_storage_node_serves_its_mounted_devices(env: dict[str, str], tmp_path: Path) -> None:
    docroot = tmp_path / "mogdata"
    (docroot / "dev4").mkdir(parents=True)
    (docroot / "dev7").mkdir()
    node_env = {**env, "MOGSTORED_DOCROOT": str(docroot), "MOGSTORED_DEVIDS": "4,7"}
    result = run(ENTRYPOINT, "mogstored", env=node_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("RAN mogstored --config=")
    assert config(result.stdout) == {
        "httplisten": "0.0.0.0:7500",
        "mgmtlisten": "0.0.0.0:7501",
        "docroot": str(docroot),
        "iostat": "0",
    }


@pytest.mark.parametrize(
    ("devids", "message"),
    [
        ("4,5", "dev5 does not exist: mount this device's volume there"),
        ("four", "'four' is not a device id"),
        ("", "set MOGSTORED_DEVIDS"),
    ],
)
def test_storage_node_refuses_a_missing_or_bad_device(
    env: dict[str, str], tmp_path: Path, devids: str, message: str
) -> None:
    (tmp_path / "mogdata" / "dev4").mkdir(parents=True)
    node_env = {**env, "MOGSTORED_DOCROOT": str(tmp_path / "mogdata"), "MOGSTORED_DEVIDS": devids}
    result = run(ENTRYPOINT, "mogstored", env=node_env)
    assert result.returncode == 1
    assert message in result.stderr
    assert "RAN" not in result.stdout


def test_any_other_command_runs_as_given(env: dict[str, str]) -> None:
    result = run(ENTRYPOINT, "echo", "mogadm", "check", env=env)
    assert (result.returncode, result.stdout) == (0, "mogadm check\n")


# -- healthcheck ------------------------------------------------------------------------


def tracker_answering(reply: bytes) -> socketserver.TCPServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            if self.rfile.readline().strip() == b"noop":
                self.wfile.write(reply)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    ("reply", "healthy"), [(b"OK \r\n", True), (b"ERR db Database\r\n", False)]
)
def test_tracker_healthcheck_sends_noop(reply: bytes, healthy: bool) -> None:
    server = tracker_answering(reply)
    try:
        env = own_environ(MOGILEFSD_LISTEN=f"0.0.0.0:{server.server_address[1]}")
        result = run(HEALTHCHECK, "mogilefsd", env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is healthy, result.stderr


def test_tracker_healthcheck_fails_when_nothing_listens() -> None:
    port = free_port()
    result = run(HEALTHCHECK, "mogilefsd", env=own_environ(MOGILEFSD_LISTEN=f":{port}"))
    assert result.returncode != 0


def test_storage_healthcheck_reads_every_device_usage_file(tmp_path: Path) -> None:
    (tmp_path / "dev1").mkdir()
    (tmp_path / "dev1" / "usage").write_text("available: 1\ntotal: 2\nused: 1\n")
    (tmp_path / "dev2").mkdir()  # no usage file yet: the node is not ready
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)),
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = own_environ(MOGSTORED_HTTP_LISTEN=f"0.0.0.0:{server.server_address[1]}")
        assert run(HEALTHCHECK, "mogstored", env={**env, "MOGSTORED_DEVIDS": "1"}).returncode == 0
        assert run(HEALTHCHECK, "mogstored", env={**env, "MOGSTORED_DEVIDS": "1,2"}).returncode != 0
    finally:
        server.shutdown()
        server.server_close()
