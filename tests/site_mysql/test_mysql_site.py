"""The avatar site on MySQL, configured as compose configures the app container.

The test session's Django is set up for SQLite, so the site runs in subprocesses:
``app/entrypoint`` (which puts the password from ``DATABASE_PASSWORD_FILE`` into
``DATABASE_URL``, as in the container) then ``manage.py migrate``, then
``mysql_avatar_flow.py`` (``avatars.services`` with in-memory storages).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from avatar_site import env as site_env
from django.db.migrations.loader import MigrationLoader
from mysql_server import ROOT, InitDB, secret_path
from ownenv import own_environ
from static import compose_file

pytestmark = pytest.mark.integration

ENTRYPOINT = ROOT / "app" / "entrypoint"
MANAGE = ROOT / "app" / "manage.py"
FLOW = Path(__file__).with_name("mysql_avatar_flow.py")
# The app container's variables this test takes from compose.yaml (the others name
# services that are not running here: memcached, the tracker).
APP_VARIABLES = ("DATABASE_URL", "DATABASE_PASSWORD_FILE", "DJANGO_SECRET_KEY_FILE", "DJANGO_DEBUG")

# A valid Django username with a 4-byte character (utf8mb3 cannot hold it), and emoji.
KEPT = {"username": "zoë_𠮷野家", "first_name": "Zoë 🦊", "last_name": "Ünïcødé 👩🏽‍💻"}
REMOVED = {"username": "bob.ørsted", "first_name": "Bob 🎈"}


@dataclass(frozen=True)
class Site:
    env: dict[str, str]
    port: int
    migrate: subprocess.CompletedProcess


def run_site(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ENTRYPOINT), sys.executable, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def site(initdb: InitDB) -> Site:
    """compose's app environment, pointed at the test server; then ``migrate``."""
    app_env = compose_file.environment("app")
    url = urlsplit(app_env["DATABASE_URL"])
    assert url.hostname == "mysql", "compose's app should reach the mysql service"
    database_url = url._replace(
        netloc=f"{url.username}@{initdb.server.host}:{initdb.server.port}"
    ).geturl()
    env = own_environ()  # whatever the calling shell has that the site reads: not passed on
    env.update({key: secret_path(app_env[key], initdb.secrets) for key in APP_VARIABLES})
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="avatar_site.settings",  # as in app/Dockerfile
        DJANGO_LOG_LEVEL="WARNING",
        # mysql_avatar_flow.py, a script in tests/, imports the site (app/ is no package)
        # and the in-memory storages (tests/memory_storages.py).
        PYTHONPATH=os.pathsep.join([str(ROOT / "app"), str(ROOT / "tests")]),
    )
    migrate = run_site(env, str(MANAGE), "migrate", "--noinput")
    if migrate.returncode != 0:
        pytest.fail(f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}", pytrace=False)
    return Site(env=env, port=initdb.server.port, migrate=migrate)


@pytest.fixture(scope="module")
def report(site: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What mysql_avatar_flow.py saw."""
    workdir = tmp_path_factory.mktemp("avatar-flow")
    spec = workdir / "spec.json"
    spec.write_text(json.dumps({"kept": KEPT, "removed": REMOVED}), encoding="utf-8")
    out = workdir / "report.json"
    result = run_site(site.env, str(FLOW), str(out), str(spec))
    if result.returncode != 0 or not out.exists():
        pytest.fail(
            f"the avatar flow failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture
def site_db(initdb: InitDB) -> Iterator[Any]:
    """A cursor on the site's database as the site's user, from outside the site."""
    site = initdb.site
    with contextlib.closing(initdb.server.connect(site.user, site.password, site.database)) as c:
        yield c.cursor()


# -- configuration ----------------------------------------------------------------------


def test_the_site_reads_the_database_url_as_env_parses_it(
    initdb: InitDB, report: dict[str, Any]
) -> None:
    environ, database = report["environ"], report["database"]
    # The entrypoint consumed the password file and put the password into the URL...
    assert environ["DATABASE_PASSWORD_FILE"] is None
    assert initdb.site.password not in environ["DATABASE_URL"]  # ...URL-encoded
    parsed = site_env.parse_database_url(environ["DATABASE_URL"], base_dir=ROOT)
    assert database == parsed
    assert database == {
        "ENGINE": "django.db.backends.mysql",
        "NAME": initdb.site.database,
        "USER": initdb.site.user,
        "PASSWORD": initdb.site.password,
        "HOST": "127.0.0.1",
        "PORT": str(initdb.server.port),
        "OPTIONS": {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"},
    }


def test_the_site_connects_as_its_user_in_utf8mb4_strict_mode(
    initdb: InitDB, report: dict[str, Any]
) -> None:
    connection = report["connection"]
    assert connection["vendor"] == "mysql"
    assert connection["current_user"] == f"{initdb.site.user}@%"
    assert connection["database"] == initdb.site.database
    assert connection["charset"] == "utf8mb4"
    assert "STRICT_TRANS_TABLES" in connection["sql_mode"].split(",")


def test_django_database_checks_pass(report: dict[str, Any]) -> None:
    assert report["check"]["ok"], report["check"]["output"]


# -- migrations -------------------------------------------------------------------------


def test_migrate_applies_every_migration(site: Site, site_db: Any) -> None:
    on_disk = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    site_db.execute("SELECT app, name FROM django_migrations")
    applied = set(site_db.fetchall())
    assert ("avatars", "0001_initial") in applied
    assert on_disk <= applied, sorted(on_disk - applied)


def test_the_site_tables_are_utf8mb4(site: Site, site_db: Any) -> None:
    site_db.execute(
        "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = DATABASE()"
    )
    tables = dict(site_db.fetchall())
    assert {"auth_user", "avatars_avatar", "django_session"} <= set(tables)
    not_utf8mb4 = {name for name, coll in tables.items() if not coll.startswith("utf8mb4_")}
    assert not_utf8mb4 == set()


# -- users ------------------------------------------------------------------------------


@pytest.mark.parametrize(("which", "fields"), [("kept_user", KEPT), ("removed_user", REMOVED)])
def test_non_ascii_names_and_emoji_survive(
    report: dict[str, Any], site_db: Any, which: str, fields: dict[str, str]
) -> None:
    user = report[which]
    assert user["read_back"] == fields
    assert user["found_by_username"] == [user["pk"]]
    columns = ", ".join(fields)
    site_db.execute(f"SELECT {columns} FROM auth_user WHERE id = %s", (user["pk"],))
    assert site_db.fetchone() == tuple(fields.values())


# -- the avatar flow --------------------------------------------------------------------


def own_files(step: dict[str, Any], user_pk: int) -> tuple[list[str], list[str]]:
    """The avatar and thumbnail files under ``user_pk``'s keys in one step's storages."""
    return (
        [f for f in step["avatar_files"] if f.startswith(f"avatars/{user_pk}/")],
        [f for f in step["thumb_files"] if f.startswith(f"thumbs/{user_pk}/")],
    )


def test_the_flow_used_in_memory_storages(report: dict[str, Any]) -> None:
    assert report["storage_backends"] == {"avatars": "InMemoryStorage", "thumbs": "InMemoryStorage"}


def test_set_avatar_writes_the_row(report: dict[str, Any]) -> None:
    pk = report["kept_user"]["pk"]
    step = report["steps"]["set"]
    [row] = step["rows"]
    assert row["user_id"] == pk
    assert (row["content_type"], row["width"], row["height"]) == ("image/jpeg", 64, 48)
    assert row["image"].startswith(f"avatars/{pk}/") and row["image"].endswith(".jpg")
    assert own_files(step, pk) == ([row["image"]], [row["thumbnail"]])


def test_set_avatar_again_replaces_the_row_and_its_files(report: dict[str, Any]) -> None:
    pk = report["kept_user"]["pk"]
    [before] = report["steps"]["set"]["rows"]
    step = report["steps"]["replace"]
    [after] = step["rows"]
    assert after["id"] == before["id"]  # the same record, updated
    assert (after["content_type"], after["width"], after["height"]) == ("image/png", 40, 30)
    assert after["image"] != before["image"] and after["image"].endswith(".png")
    # The old files went once the new record was committed.
    assert own_files(step, pk) == ([after["image"]], [after["thumbnail"]])


def test_remove_avatar_deletes_the_row_and_its_files(report: dict[str, Any]) -> None:
    pk = report["removed_user"]["pk"]
    [row] = report["steps"]["set_other"]["rows"]
    assert row["content_type"] == "image/gif"
    assert own_files(report["steps"]["set_other"], pk) == ([row["image"]], [row["thumbnail"]])
    removed = report["steps"]["remove"]
    assert removed["returned"] is True
    assert removed["rows"] == []
    assert own_files(removed, pk) == ([], [])
    again = report["steps"]["remove_again"]
    assert again["returned"] is False
    assert again["rows"] == []


def test_the_rows_are_in_the_database_seen_from_outside(
    report: dict[str, Any], site_db: Any
) -> None:
    site_db.execute("SELECT user_id, image, thumbnail, content_type FROM avatars_avatar")
    rows = {row[0]: row[1:] for row in site_db.fetchall()}
    [kept] = report["steps"]["replace"]["rows"]
    assert rows == {
        report["kept_user"]["pk"]: (kept["image"], kept["thumbnail"], kept["content_type"])
    }
