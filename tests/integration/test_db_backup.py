"""scripts/db-backup against a stand-in MySQL container (MYSQL_EXEC): what it writes, what it
refuses. The real dump and load run in CI's restore drill (.ci/restore-drill)."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest
from ownenv import own_environ

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "db-backup"

# The "container": runs the command with stand-in mysql/mysqldump first on the PATH.
# mysql answers SELECT 1 (unless $DIR/down exists), the table count from $DIR/tables, and
# keeps what it is fed; mysqldump prints its arguments as the dump.
EXEC = """#!/bin/sh
PATH="{dir}:$PATH" exec "$@"
"""
MYSQL = """#!/bin/sh
[ -e {dir}/down ] && exit 1
case "$*" in
*"SELECT 1"*) echo 1 ;;
*COUNT*) cat {dir}/tables ;;
*) cat >{dir}/loaded ;;
esac
"""
MYSQLDUMP = """#!/bin/sh
echo "-- dump: $*"
"""


@pytest.fixture
def container(tmp_path: Path) -> Path:
    stub = tmp_path / "container"
    stub.mkdir()
    for name, text in (("exec", EXEC), ("mysql", MYSQL), ("mysqldump", MYSQLDUMP)):
        (stub / name).write_text(text.format(dir=stub))
        (stub / name).chmod(0o755)
    (stub / "tables").write_text("0\n")
    return stub


def db_backup(container: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = own_environ(MYSQL_EXEC=str(container / "exec"))
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30)


def test_backup_writes_one_consistent_dump_and_its_checksum(
    container: Path, tmp_path: Path
) -> None:
    result = db_backup(container, "backup", str(tmp_path))
    assert result.returncode == 0, result.stderr
    dump = Path(result.stdout.strip())
    assert dump.parent == tmp_path and dump.name.startswith("mogilefs-django-")
    text = gzip.decompress(dump.read_bytes()).decode()
    assert "--single-transaction" in text and "--databases mogilefs avatars" in text
    check = subprocess.run(["sha256sum", "--check", dump.name + ".sha256"], cwd=tmp_path)
    assert check.returncode == 0


def test_restore_refuses_a_database_with_tables_unless_forced(
    container: Path, tmp_path: Path
) -> None:
    dump = Path(db_backup(container, "backup", str(tmp_path)).stdout.strip())
    (container / "tables").write_text("7\n")
    refused = db_backup(container, "restore", str(dump))
    assert refused.returncode == 1
    assert "hold 7 table(s)" in refused.stderr and not (container / "loaded").exists()
    forced = db_backup(container, "restore", str(dump), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (container / "loaded").read_bytes() == gzip.decompress(dump.read_bytes())


def test_restore_refuses_a_dump_that_does_not_match_its_checksum(
    container: Path, tmp_path: Path
) -> None:
    dump = Path(db_backup(container, "backup", str(tmp_path)).stdout.strip())
    dump.write_bytes(gzip.compress(b"-- another dump\n"))
    result = db_backup(container, "restore", str(dump))
    assert result.returncode == 1 and "does not match" in result.stderr
    assert not (container / "loaded").exists()


def test_a_mysql_that_does_not_answer_is_named(container: Path, tmp_path: Path) -> None:
    (container / "down").touch()
    result = db_backup(container, "backup", str(tmp_path))
    assert result.returncode == 1
    assert "MySQL does not answer through" in result.stderr
    assert list(tmp_path.glob("*.sql.gz*")) == []
