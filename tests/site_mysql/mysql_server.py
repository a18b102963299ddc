"""A throwaway MariaDB server, and the mysql image's first start, for the MySQL tests.

Used by this folder's conftest (the fixtures) and tests (the types and helpers). The
server runs with its grant tables (no ``--skip-grant-tables``), reads no option file
of this machine (``--no-defaults``) and keeps MariaDB's latin1 server default, so that
utf8mb4 in the databases can only come from the init script.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django_mogilefs.testing import free_port
from static import compose_file

try:
    import MySQLdb
except ImportError:  # a failure, not a skip: requirements-dev.txt has the driver
    MySQLdb = None

ROOT = Path(__file__).resolve().parents[2]
INITDB_DIR = ROOT / "mysql" / "initdb.d"
INITDB_SHIM = Path(__file__).with_name("mysql_image_initdb.sh")
SECRETS_MOUNT = "/run/secrets/"

START_TIMEOUT = 30.0  # seconds until the server answers on its socket
STOP_TIMEOUT = 20.0  # seconds for a clean shutdown before SIGKILL
START_ATTEMPTS = 3  # another process may take the free port before mariadbd binds it

# What the secrets hold here. The passwords have characters that need quoting in an
# SQL string (' and \) and in a URL (@ : / ? # % and a space); "$HOME" must stay as is.
SECRETS = {
    "mysql_root_password": "root-pw-for-tests",
    "mogilefs_db_password": "tr@cker's \\pw:/?#%41 $HOME",
    "site_db_password": "it's a s1te p@ss:w/rd?#%2F\\ $HOME",
    "django_secret_key": "mysql-tests-only-not-secret-" + "k" * 30,
}


def require_driver() -> None:
    if MySQLdb is None:
        pytest.fail(
            "mysqlclient (MySQLdb) is not installed: .venv/bin/pip install -r "
            "requirements-dev.txt (it builds with the packages of scripts/system-deps.sh)",
            pytrace=False,
        )


# -- the server -------------------------------------------------------------------------


@dataclass(frozen=True)
class Binaries:
    install_db: str
    server: str
    client: str


def _which(*names: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def find_binaries() -> Binaries:
    """The MariaDB programs, or a skip that says what to install."""
    names = {"install_db": "mariadb-install-db", "server": "mariadbd", "client": "mariadb"}
    found = {
        "install_db": _which("mariadb-install-db", "mysql_install_db"),
        "server": _which("mariadbd", "mysqld"),
        "client": _which("mariadb", "mysql"),
    }
    missing = [names[key] for key, path in found.items() if not path]
    if missing:
        pytest.skip(
            f"MariaDB binaries missing ({', '.join(missing)}): install the Debian package "
            "mariadb-server (scripts/system-deps.sh --install)"
        )
    return Binaries(**found)


@dataclass
class MariaDB:
    """A running server: TCP on ``host:port`` for the accounts, ``socket`` for root."""

    port: int
    socket: Path
    error_log: Path
    client: str
    root_password: str = ""
    host: str = "127.0.0.1"

    def connect(self, user: str, password: str, database: str | None = None) -> Any:
        """A connection over TCP, as the tracker and the site make theirs."""
        kwargs = {"database": database} if database else {}
        return MySQLdb.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=password,
            charset="utf8mb4",
            connect_timeout=5,
            **kwargs,
        )

    def root(self) -> Any:
        """root@localhost over the socket (root's only account, as in the mysql image)."""
        return MySQLdb.connect(
            unix_socket=str(self.socket),
            user="root",
            password=self.root_password,
            charset="utf8mb4",
            connect_timeout=5,
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.error_log.read_text(errors="replace")
        except OSError:
            return "(no error log)"
        return "\n".join(text.splitlines()[-lines:])


def _run_or_fail(
    what: str, argv: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end; if it fails, fail the test with what it printed."""
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when pytest dies, so no server outlives a kill -9."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # mariadbd shuts down cleanly on SIGTERM
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


def _wait_ready(proc: subprocess.Popen, server: MariaDB) -> bool:
    """True once root can log in over the socket; False if the server exited."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if server.socket.exists():
            try:
                server.root().close()
                return True
            except MySQLdb.OperationalError:
                pass
        time.sleep(0.1)
    pytest.fail(
        f"mariadbd did not answer within {START_TIMEOUT:.0f} s:\n{server.log_tail()}",
        pytrace=False,
    )


@contextlib.contextmanager
def run_mariadb(workdir: Path, sockdir: Path, binaries: Binaries) -> Iterator[MariaDB]:
    """Install a data directory in ``workdir``, start the server, stop it on the way out."""
    datadir = workdir / "data"
    # mariadbd refuses to run as root unless told to; as anyone else it is that user.
    as_user = ["--user=root"] if os.geteuid() == 0 else []
    _run_or_fail(
        "mariadb-install-db",
        [
            binaries.install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",  # root@localhost logs in by password
            "--skip-test-db",
            "--skip-name-resolve",
            *as_user,
        ],
        timeout=120,
    )

    for attempt in range(START_ATTEMPTS):
        server = MariaDB(
            port=free_port(),
            socket=sockdir / "mysqld.sock",
            error_log=workdir / f"error-{attempt}.log",
            client=binaries.client,
        )
        with (workdir / "mariadbd.out").open("ab") as out:
            proc = subprocess.Popen(
                [
                    binaries.server,
                    "--no-defaults",
                    f"--datadir={datadir}",
                    f"--bind-address={server.host}",
                    f"--port={server.port}",
                    f"--socket={server.socket}",
                    f"--pid-file={workdir / 'mariadbd.pid'}",
                    f"--log-error={server.error_log}",
                    f"--tmpdir={workdir}",
                    "--skip-name-resolve",
                    "--innodb-use-native-aio=0",  # tmpfs, and containers without io_uring
                    *as_user,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        try:
            ready = _wait_ready(proc, server)
        except BaseException:
            _stop(proc)
            raise
        if ready:
            break
        if "Address already in use" not in server.log_tail(200):
            pytest.fail(f"mariadbd exited ({proc.returncode}):\n{server.log_tail()}", pytrace=False)
    else:
        pytest.fail(f"mariadbd found no free port in {START_ATTEMPTS} attempts", pytrace=False)

    try:
        yield server
    finally:
        _stop(proc)


# -- the mysql image's first start ------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A database and its user, as the init script was told to make them."""

    database: str
    user: str
    password_file: Path

    @property
    def password(self) -> str:
        # As the script and the app's entrypoint read it: $(<file), trailing newlines dropped.
        return self.password_file.read_text(encoding="utf-8").rstrip("\n")


@dataclass(frozen=True)
class InitDB:
    server: MariaDB
    tracker: Account
    site: Account
    secrets: dict[str, Path]  # secret name -> the file standing for /run/secrets/<name>
    result: subprocess.CompletedProcess  # the init script's run


def secret_path(value: str, secrets: dict[str, Path]) -> str:
    """A compose ``/run/secrets/<name>`` path -> the test's file for that secret."""
    if value.startswith(SECRETS_MOUNT):
        return str(secrets[value.removeprefix(SECRETS_MOUNT)])
    return value


def run_initdb(server: MariaDB, secrets: dict[str, Path]) -> InitDB:
    """Root's password, then ``mysql/initdb.d``, with compose's ``mysql`` environment."""
    env = {
        key: secret_path(value, secrets) for key, value in compose_file.environment("mysql").items()
    }
    root_password = Path(env["MYSQL_ROOT_PASSWORD_FILE"]).read_text().rstrip("\n")
    with contextlib.closing(server.root()) as conn:  # no password yet
        cursor = conn.cursor()
        cursor.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (root_password,))
        # mariadb-install-db also makes these, without a password; the image has neither.
        cursor.execute("DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1'")
    server.root_password = root_password

    result = _run_or_fail(
        "mysql/initdb.d",
        ["bash", str(INITDB_SHIM), str(INITDB_DIR)],
        timeout=60,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "SOCKET": str(server.socket),
            "MYSQL_CLIENT": server.client,
            **env,
        },
    )
    return InitDB(
        server=server,
        tracker=Account(
            database=env["MOGILEFS_DB_NAME"],
            user=env["MOGILEFS_DB_USER"],
            password_file=Path(env["MOGILEFS_DB_PASSWORD_FILE"]),
        ),
        site=Account(
            database=env["SITE_DB_NAME"],
            user=env["SITE_DB_USER"],
            password_file=Path(env["SITE_DB_PASSWORD_FILE"]),
        ),
        secrets=secrets,
        result=result,
    )
