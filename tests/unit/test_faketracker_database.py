"""Fake trackers on one SQLite database: what one writes, the other reads; work is shared."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from django_mogilefs.testing.faketracker import FakeTracker
from django_mogilefs.testing.faketracker.__main__ import dsn_url, read_config
from django_mogilefs.testing.faketracker.client import parse_reply
from django_mogilefs.testing.faketracker.db import DatabaseError, open_database
from django_mogilefs.testing.faketracker.schema import SCHEMA_VERSION, TABLES
from django_mogilefs.testing.faketracker.store import Store
from django_mogilefs.testing.faketracker.workers import JobMaster

pytestmark = pytest.mark.unit


def ok(tracker: FakeTracker, line: str) -> dict[str, str]:
    reply = parse_reply(tracker.execute(line))
    assert reply.ok, reply.raw
    return reply.args


def shared(path: Path) -> Store:
    store = Store(open_database(path))
    store.db.create_schema()
    return store


def test_a_change_through_one_tracker_is_seen_through_the_other(tmp_path: Path) -> None:
    path = tmp_path / "tracker.sqlite3"
    one, two = FakeTracker(store=shared(path)), FakeTracker(store=shared(path))
    ok(one, "create_domain domain=shared")
    ok(two, "create_class domain=shared&class=c&mindevcount=2")
    domains = ok(one, "get_domains")
    assert domains["domain1"] == "shared"
    assert {domains["domain1class1name"], domains["domain1class2name"]} == {"default", "c"}
    reopened = FakeTracker(database=path)  # as after a restart
    assert reopened.store.domain_by_name("shared") is not None


def test_the_schema_is_the_real_one_and_versioned(tmp_path: Path) -> None:
    store = shared(tmp_path / "tracker.sqlite3")
    with sqlite3.connect(tmp_path / "tracker.sqlite3") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {t.name for t in TABLES} <= tables
    assert {"file", "file_on", "tempfile", "file_to_replicate", "file_to_delete2"} <= tables
    assert store.setting("schema_version") == str(SCHEMA_VERSION)


def test_fids_are_not_handed_out_twice(tmp_path: Path) -> None:
    path = tmp_path / "tracker.sqlite3"
    stores = [shared(path), shared(path)]
    fids: list[int] = []

    def alloc(store: Store) -> None:
        for _ in range(100):
            fids.append(store.register_tempfile(None, 1, "k", 0, "1"))

    threads = [threading.Thread(target=alloc, args=(s,)) for s in stores * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(fids)) == 400


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "tracker.sqlite3"
    path.write_bytes(b"not a database")
    with pytest.raises(DatabaseError, match="not an SQLite database"):
        open_database(path)
    assert path.read_bytes() == b"not a database"
    with pytest.raises(DatabaseError, match="not a directory"):
        open_database(tmp_path / "missing" / "tracker.sqlite3")


def test_a_database_without_the_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tracker.sqlite3"
    with pytest.raises(DatabaseError, match="schema version is missing"):
        FakeTracker(database=path)


def test_two_trackers_job_masters_hand_out_each_row_once(tmp_path: Path) -> None:
    path = tmp_path / "tracker.sqlite3"
    one, two = FakeTracker(store=shared(path)), FakeTracker(store=shared(path))
    for fid in (5, 6):
        one.store.enqueue_replication(fid)
    JobMaster(one).run_once()
    JobMaster(two).run_once()
    assert one.replicate_work.qsize() == 2, "the first job master took both"
    assert two.replicate_work.qsize() == 0, "the second sees the first one's claims"
    one.shutdown()  # never started: only hands back what it took
    JobMaster(two).run_once()
    assert two.replicate_work.qsize() == 2, "a stopped tracker's work is taken over"


def test_a_mogilefsd_conf_names_the_database_as_mogilefsd_reads_it(tmp_path: Path) -> None:
    conf = tmp_path / "mogilefsd.conf"
    conf.write_text(
        "# Written by the entrypoint\n"
        "db_dsn = DBI:mysql:mogilefs;host=mysql;port=3306\n"
        "db_user = mogile\n"
        "db_pass = p@ss:w/rd#\n"
        "listen = 0.0.0.0:7001\n"
    )
    settings = read_config(conf)
    assert settings["listen"] == "0.0.0.0:7001"
    url = dsn_url(settings["db_dsn"], settings["db_user"], settings["db_pass"])
    assert url == "mysql://mogile:p%40ss%3Aw%2Frd%23@mysql:3306/mogilefs"
    assert open_database(url).url == "mysql://mogile@mysql:3306/mogilefs"
    assert dsn_url("DBI:SQLite:dbname=/var/tracker.db", "", "") == "/var/tracker.db"
    with pytest.raises(DatabaseError, match="expected DBI:mysql"):
        dsn_url("DBI:Pg:dbname=x", "", "")
