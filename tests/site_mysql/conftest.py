"""A private MariaDB server, set up by the project's own MySQL init script.

``mariadb`` (session) makes a data directory with ``mariadb-install-db``, starts
``mariadbd`` on 127.0.0.1 (a free port) and its own socket, with the grant tables
on, and stops it at the end, also when a test or the start fails. The tests are
skipped only when the MariaDB binaries are missing (Debian ``mariadb-server``: see
``scripts/system-deps.sh``); a missing ``mysqlclient`` is a failure.

``initdb`` (session) then does what the mysql image does on a first start: gives
root its password, and runs ``mysql/initdb.d`` through ``mysql_image_initdb.sh``
(the image's init-file loop and ``docker_process_sql``), with the environment that
compose.yaml gives the ``mysql`` service. The secrets compose mounts under
``/run/secrets`` are files written here, with passwords that need the script's SQL
quoting and the app entrypoint's URL encoding.

This folder has no ``__init__.py``: its modules are found by their (unique) names,
and the tests import the helpers from ``mysql_server``, not from this conftest.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mysql_server import SECRETS, InitDB, MariaDB, find_binaries, require_driver, run_initdb
from mysql_server import run_mariadb as _run_mariadb


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    binaries = find_binaries()
    require_driver()
    workdir = tmp_path_factory.mktemp("mariadb")
    # A socket path must fit in 108 bytes; pytest's temporary paths can be long.
    sockdir = Path(tempfile.mkdtemp(prefix="mariadb-"))
    try:
        with _run_mariadb(workdir, sockdir, binaries) as server:
            yield server
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


@pytest.fixture(scope="session")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Secret name -> the file standing for compose's ``/run/secrets/<name>``."""
    directory = tmp_path_factory.mktemp("secrets")
    files = {}
    for name, value in SECRETS.items():
        files[name] = directory / name
        files[name].write_text(value + "\n", encoding="utf-8")  # as `echo value >file`
    return files


@pytest.fixture(scope="session")
def initdb(mariadb: MariaDB, secrets: dict[str, Path]) -> InitDB:
    return run_initdb(mariadb, secrets)
