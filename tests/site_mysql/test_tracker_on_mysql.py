"""The fake tracker on MySQL: the real schema, in the database the init script makes.

As in compose: ``mogdbsetup`` (here ``mogilefs-faketracker --setup-db``) creates the
tables in the tracker's database, two trackers share it, and keys compare as that
database's collation does: keys that differ only by trailing spaces are two files.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Callable
from urllib.parse import quote

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.testing.cluster import MogileCluster
from django_mogilefs.testing.faketracker.schema import SCHEMA_VERSION, TABLES
from mysql_server import InitDB
from ownenv import own_environ

pytestmark = pytest.mark.integration


def tracker_url(initdb: InitDB) -> str:
    account, server = initdb.tracker, initdb.server
    user, password = quote(account.user, safe=""), quote(account.password, safe="")
    return f"mysql://{user}:{password}@{server.host}:{server.port}/{account.database}"


@pytest.fixture(scope="module")
def schema(initdb: InitDB) -> str:
    """The schema, made the way compose's mogdbsetup makes it (twice: the second is a no-op)."""
    url = tracker_url(initdb)
    for expected in ("Schema created at version", "Schema already up-to-date"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "django_mogilefs.testing.faketracker",
                "--setup-db",
                "--database",
                url,
            ],
            env=own_environ(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout
    return url


@pytest.fixture(scope="module")
def cluster(schema: str, make_fake_cluster: Callable[..., MogileCluster]) -> MogileCluster:
    return make_fake_cluster(domain=f"d{uuid.uuid4().hex[:8]}", trackers=2, database=schema)


def test_setup_makes_the_real_tables(initdb: InitDB, schema: str) -> None:
    tracker = initdb.tracker
    with contextlib.closing(
        initdb.server.connect(tracker.user, tracker.password, tracker.database)
    ) as conn:
        cursor = conn.cursor()
        cursor.execute("SHOW TABLES")
        tables = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT value FROM server_settings WHERE field='schema_version'")
        version = cursor.fetchone()
        cursor.execute("SHOW COLUMNS FROM file_on")
        file_on = [row[0] for row in cursor.fetchall()]
    assert {t.name for t in TABLES if not t.sqlite_only} == tables
    assert version == (str(SCHEMA_VERSION),)
    assert file_on == ["fid", "devid"]


def test_keys_that_differ_by_trailing_spaces_are_two_files(cluster: MogileCluster) -> None:
    client = MogileFSClient(cluster.trackers, cluster.domain)
    try:
        client.store("a.jpg", b"no space", cls="thumb")
        client.store("a.jpg ", b"one space", cls="thumb")
        with client.open("a.jpg") as plain, client.open("a.jpg ") as spaced:
            assert (plain.read(), spaced.read()) == (b"no space", b"one space")
        assert sorted(client.list_keys("a.jpg")) == ["a.jpg", "a.jpg "]
        assert client.file_info("a.jpg").fid != client.file_info("a.jpg ").fid
    finally:
        client.close()


def test_what_one_tracker_writes_the_other_reads(cluster: MogileCluster) -> None:
    one = MogileFSClient(cluster.trackers[:1], cluster.domain)
    two = MogileFSClient(cluster.trackers[1:], cluster.domain)
    try:
        one.store("shared/k", b"through one", cls="avatar")
        with two.open("shared/k") as stream:
            assert stream.read() == b"through one"
        two.delete("shared/k")
        assert not one.exists("shared/k")
    finally:
        one.close()
        two.close()
