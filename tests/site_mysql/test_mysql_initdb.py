"""mysql/initdb.d/10-databases.sh, run as the mysql image runs it, on a real server."""

from __future__ import annotations

import contextlib
import uuid
from urllib.parse import urlsplit

import pytest
from mysql_server import INITDB_DIR, Account, InitDB
from MySQLdb import OperationalError
from static import compose_file

pytestmark = pytest.mark.integration

ER_DBACCESS_DENIED = 1044
ER_ACCESS_DENIED = 1045


def accounts(initdb: InitDB) -> dict[str, Account]:
    return {"tracker": initdb.tracker, "site": initdb.site}


def test_the_compose_clients_use_the_accounts_the_script_makes(initdb: InitDB) -> None:
    tracker_env = compose_file.environment("mogilefsd")
    assert (tracker_env["MOGILEFS_DB_NAME"], tracker_env["MOGILEFS_DB_USER"]) == (
        initdb.tracker.database,
        initdb.tracker.user,
    )
    assert tracker_env["MOGILEFS_DB_PASSWORD_FILE"] == "/run/secrets/mogilefs_db_password"
    site_url = urlsplit(compose_file.environment("app")["DATABASE_URL"])
    assert (site_url.path.lstrip("/"), site_url.username) == (
        initdb.site.database,
        initdb.site.user,
    )


def test_the_script_is_sourced_and_reports_both_databases(initdb: InitDB) -> None:
    """Sourced, as the image does with a non-executable .sh: run as a program it would
    not have docker_process_sql, and would still print "ready" for each database."""
    out = initdb.result.stdout
    assert f"sourcing {INITDB_DIR / '10-databases.sh'}" in out
    assert f"initdb: database {initdb.tracker.database} and user {initdb.tracker.user} ready" in out
    assert f"initdb: database {initdb.site.database} and user {initdb.site.user} ready" in out
    assert initdb.result.stderr == ""


def test_both_databases_and_users_exist(initdb: InitDB) -> None:
    with contextlib.closing(initdb.server.root()) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA"
        )
        schemas = dict(cursor.fetchall())
        cursor.execute("SELECT User, Host FROM mysql.user")
        users = set(cursor.fetchall())
    tracker, site = initdb.tracker, initdb.site
    assert schemas[tracker.database] == "utf8mb4"
    assert schemas[site.database] == "utf8mb4"  # the server's own default is latin1
    assert {(tracker.user, "%"), (site.user, "%")} <= users


@pytest.mark.parametrize("which", ["tracker", "site"])
def test_each_user_connects_with_its_password(initdb: InitDB, which: str) -> None:
    account = accounts(initdb)[which]
    assert "'" in account.password and "\\" in account.password  # the script must quote them
    with contextlib.closing(
        initdb.server.connect(account.user, account.password, account.database)
    ) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT CURRENT_USER(), DATABASE()")
        assert cursor.fetchone() == (f"{account.user}@%", account.database)


@pytest.mark.parametrize("which", ["tracker", "site"])
def test_a_wrong_password_is_refused(initdb: InitDB, which: str) -> None:
    account = accounts(initdb)[which]
    with pytest.raises(OperationalError) as excinfo:
        initdb.server.connect(account.user, account.password + "x", account.database)
    assert excinfo.value.args[0] == ER_ACCESS_DENIED


@pytest.mark.parametrize(("which", "other"), [("tracker", "site"), ("site", "tracker")])
def test_each_user_is_kept_out_of_the_other_database(
    initdb: InitDB, which: str, other: str
) -> None:
    account, elsewhere = accounts(initdb)[which], accounts(initdb)[other]
    with pytest.raises(OperationalError) as excinfo:
        initdb.server.connect(account.user, account.password, elsewhere.database)
    assert excinfo.value.args[0] == ER_DBACCESS_DENIED


def test_the_tracker_database_collation_is_binary_and_no_pad(initdb: InitDB) -> None:
    with contextlib.closing(initdb.server.root()) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
            (initdb.tracker.database,),
        )
        # MariaDB (the stand-in, and here) has utf8mb4_nopad_bin, MySQL 8 utf8mb4_0900_bin.
        assert cursor.fetchone() in (("utf8mb4_nopad_bin",), ("utf8mb4_0900_bin",))


def test_tracker_keys_differing_in_case_accent_or_trailing_spaces_are_distinct(
    initdb: InitDB,
) -> None:
    """A table shaped like MogileFS's ``file`` (made by mogdbsetup with no collation of its
    own, so the database's): its unique key must not merge these keys."""
    tracker = initdb.tracker
    table = f"file_{uuid.uuid4().hex[:8]}"
    keys = ["Avatar.png", "avatar.png", "avatár.png", "avatar.PNG", "avatar.png "]
    with contextlib.closing(
        initdb.server.connect(tracker.user, tracker.password, tracker.database)
    ) as conn:
        cursor = conn.cursor()
        cursor.execute(
            f"CREATE TABLE {table} (fid BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
            " dmid SMALLINT UNSIGNED NOT NULL, dkey VARCHAR(255),"
            " UNIQUE KEY dkey (dmid, dkey)) ENGINE=InnoDB"
        )
        try:
            cursor.executemany(
                f"INSERT INTO {table} (fid, dmid, dkey) VALUES (%s, 1, %s)",
                list(enumerate(keys, start=1)),
            )
            conn.commit()
            cursor.execute(f"SELECT dkey FROM {table} ORDER BY fid")
            assert [row[0] for row in cursor.fetchall()] == keys
            cursor.execute(f"SELECT fid FROM {table} WHERE dmid = 1 AND dkey = %s", ("avatar.png",))
            assert cursor.fetchall() == ((2,),)
        finally:
            cursor.execute(f"DROP TABLE {table}")
