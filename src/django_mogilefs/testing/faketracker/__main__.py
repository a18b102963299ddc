"""``mogilefs-faketracker [--listen HOST:PORT] [--database PATH|URL] [options]``.

The same as ``python -m django_mogilefs.testing.faketracker``.

* ``--database``: an SQLite file (created if missing; every fake tracker given the same
  file shares it) or ``mysql://user:password@host:port/database`` (PyMySQL, a database
  made with ``--setup-db``). Without one, a private SQLite database that goes away
  with the process.
* ``--config FILE``: read ``listen``, ``db_dsn``, ``db_user`` and ``db_pass`` from a
  mogilefsd.conf, so the fake runs where a real mogilefsd would.
* ``--setup-db``: create or complete the schema (mogdbsetup) and exit.

Every option also reads an environment variable, used when the option is not given:
``FAKETRACKER_LISTEN``, ``FAKETRACKER_DATABASE``, ``FAKETRACKER_MONITOR_INTERVAL``,
``FAKETRACKER_ADMIN_DELAY``, ``FAKETRACKER_TEST_WRITE_INTERVAL``,
``FAKETRACKER_REPLICATE_POLL``, ``FAKETRACKER_REAPER_DELAY``, ``FAKETRACKER_QUERY_WORKERS``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import quote

from .db import DatabaseError, open_database
from .server import FakeTracker, TrackerConfig
from .store import Store

ENV_PREFIX = "FAKETRACKER_"


def _env(option: str, default: object) -> object:
    """The default of ``--option``: ``FAKETRACKER_OPTION`` if set, else ``default``."""
    return os.environ.get(ENV_PREFIX + option.upper().replace("-", "_"), default)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mogilefs-faketracker",
        description="A fake MogileFS 2.73 tracker for tests. Each option's default comes "
        "from the environment variable FAKETRACKER_<OPTION> (e.g. FAKETRACKER_DATABASE).",
    )
    parser.add_argument("--listen", default=_env("listen", None), help="host:port (127.0.0.1:7001)")
    parser.add_argument(
        "--database",
        default=_env("database", None),
        help="an SQLite file or mysql://user:password@host:port/db; trackers given the "
        "same database act as trackers on one database (default: private, temporary)",
    )
    parser.add_argument("--config", type=Path, help="a mogilefsd.conf (listen, db_dsn, ...)")
    parser.add_argument("--setup-db", action="store_true", help="create the schema and exit")
    numbers: list[tuple[str, type, object, str]] = [
        ("monitor-interval", float, TrackerConfig.monitor_interval, "seconds between rounds"),
        ("admin-delay", float, TrackerConfig.admin_delay, "extra seconds per admin change"),
        ("test-write-interval", float, TrackerConfig.test_write_interval, "seconds"),
        ("replicate-poll", float, TrackerConfig.replicate_poll, "seconds"),
        ("reaper-delay", float, TrackerConfig.reaper_delay, "seconds before a dead disk is reaped"),
        ("query-workers", int, TrackerConfig.query_workers, "threads"),
    ]
    for name, kind, default, text in numbers:
        parser.add_argument(
            f"--{name}", type=kind, default=_env(name, default), help=f"{text} (%(default)s)"
        )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def read_config(path: Path) -> dict[str, str]:
    """``key = value`` lines of a mogilefsd.conf (comments and blank lines skipped)."""
    settings = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"\s*(\w+)\s*=\s*(.*?)\s*", line)
        if match and not line.lstrip().startswith("#"):
            settings[match.group(1)] = match.group(2)
    return settings


def dsn_url(dsn: str, user: str, password: str) -> str:
    """``DBI:mysql:NAME;host=H;port=P`` (or ``DBI:SQLite:dbname=PATH``) as a database URL."""
    match = re.fullmatch(r"(?i)DBI:(mysql|sqlite):(.*)", dsn.strip())
    if not match:
        raise DatabaseError(f"db_dsn {dsn!r}: expected DBI:mysql:... or DBI:SQLite:...")
    driver, rest = match.group(1).lower(), match.group(2)
    fields = dict(p.split("=", 1) if "=" in p else ("database", p) for p in rest.split(";") if p)
    if driver == "sqlite":
        return fields.get("dbname") or fields.get("database") or ""
    name = fields.get("database") or fields.get("dbname") or ""
    host, port = fields.get("host", "localhost"), fields.get("port", "3306")
    return f"mysql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{name}"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    opts = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if opts.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    listen, database = opts.listen, opts.database
    try:
        if opts.config is not None:
            conf = read_config(opts.config)
            listen = listen or conf.get("listen")
            if not database and conf.get("db_dsn"):
                database = dsn_url(conf["db_dsn"], conf.get("db_user", ""), conf.get("db_pass", ""))
    except (OSError, DatabaseError) as exc:
        print(f"faketracker: --config: {exc}", file=sys.stderr)
        return 2
    listen = listen or "127.0.0.1:7001"
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        parser.error(f"--listen/FAKETRACKER_LISTEN: expected host:port, got {listen!r}")
    if opts.setup_db:
        if not database:
            parser.error("--setup-db needs --database (or --config with db_dsn)")
        return _setup(database)
    try:
        store = Store(open_database(database)) if database else None
        if store is not None:
            if store.db.dialect == "sqlite":
                store.db.create_schema()  # a file the trackers share: whoever starts first
            store.db.check_schema()
    except (DatabaseError, OSError) as exc:
        print(f"faketracker: --database/FAKETRACKER_DATABASE: {exc}", file=sys.stderr)
        return 2
    tracker = FakeTracker(
        host or "127.0.0.1",
        int(port),
        store=store,
        monitor_interval=opts.monitor_interval,
        admin_delay=opts.admin_delay,
        test_write_interval=opts.test_write_interval,
        replicate_poll=opts.replicate_poll,
        reaper_delay=opts.reaper_delay,
        query_workers=opts.query_workers,
    ).start()
    logging.getLogger("faketracker").info(
        "fake MogileFS tracker listening on %s (database: %s)",
        tracker.hostport,
        tracker.store.db.url if database else "private, temporary",
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5) and not tracker.stopping:
        pass
    tracker.shutdown()
    return 0


def _setup(database: str) -> int:
    try:
        db = open_database(database)
        version = db.schema_version()
        db.create_schema()
    except (DatabaseError, OSError) as exc:
        print(f"faketracker: --setup-db: {exc}", file=sys.stderr)
        return 1
    if version:
        print(f"Schema already up-to-date at version {version}.")
    else:
        print(f"Schema created at version {db.schema_version()} in {db.url}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
