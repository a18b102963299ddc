"""The tracker's database: SQLite (a file several trackers share) or MySQL, as mogilefsd.

Statements are written once, with ``?`` placeholders; :class:`Database` runs them on a
connection of the calling thread, in autocommit mode unless inside
:meth:`Database.transaction`. Several trackers, in one process or several, share a
database exactly as mogilefsd processes share theirs: every change is a statement or
a short transaction, nothing is held in memory across requests.

``open_database("sqlite:///path/db.sqlite3")``, ``open_database("/path/db.sqlite3")``
(the same) or ``open_database("mysql://user:password@host:3306/mogilefs")`` (PyMySQL).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from . import schema
from .protocol import from_bytes, to_bytes

Params = Sequence[Any]
_MYSQL_LOST = {2003, 2006, 2013, 2055}  # can't connect, gone away, lost, lost (SSL)
_MYSQL_DEADLOCK = {1205, 1213}  # lock wait timeout, deadlock
_MYSQL_DUPLICATE = 1062
LOCK_LIFETIME = 120.0  # s: an SQLite lock whose holder died is taken over after this


class DatabaseError(RuntimeError):
    """The database cannot be used (unreachable, wrong schema, not a tracker database)."""


class Duplicate(Exception):
    """A UNIQUE or PRIMARY KEY constraint refused the row (MogileFS's "dup")."""


class Database:
    """One database, one connection per thread. Subclasses speak a dialect."""

    dialect = ""
    insert_ignore = ""  # "INSERT OR IGNORE" / "INSERT IGNORE"

    def __init__(self) -> None:
        self._local = threading.local()
        self._connections: list[Any] = []
        self._guard = threading.Lock()
        self.url = ""

    # ------------------------------------------------------------------ connections

    def _connect(self) -> Any:
        raise NotImplementedError

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.depth = 0
            with self._guard:
                self._connections.append(conn)
        return conn

    def _drop(self) -> None:
        """Forget this thread's connection (it broke); the next statement reconnects."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        self._local.depth = 0
        if conn is not None:
            with self._guard, contextlib.suppress(ValueError):
                self._connections.remove(conn)
            with contextlib.suppress(Exception):
                conn.close()

    def release_thread(self) -> None:
        """Close the calling thread's connection (the thread is ending)."""
        self._drop()

    def close(self) -> None:
        with self._guard:
            conns, self._connections = self._connections, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._local = threading.local()

    # ------------------------------------------------------------------ statements

    def sql(self, statement: str) -> str:
        return statement

    def _run(self, statement: str, params: Params) -> Any:
        raise NotImplementedError

    def execute(self, statement: str, params: Params = ()) -> Any:
        """Run one statement; the cursor (``rowcount``, ``lastrowid``, rows)."""
        return self._run(self.sql(statement), params)

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self.execute(statement, params).fetchall())

    def one(self, statement: str, params: Params = ()) -> tuple[Any, ...] | None:
        rows = self.query(statement, params)
        return rows[0] if rows else None

    def scalar(self, statement: str, params: Params = ()) -> Any:
        row = self.one(statement, params)
        return row[0] if row else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """A transaction on this thread's connection (re-entrant: the outermost commits)."""
        self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield self
            finally:
                self._local.depth -= 1
            return
        self._begin()
        self._local.depth = 1
        try:
            yield self
        except BaseException:
            self._local.depth = 0
            with contextlib.suppress(Exception):
                self._conn().rollback()
            raise
        self._local.depth = 0
        self._conn().commit()

    def retrying(self, work: Any, attempts: int = 5) -> Any:
        """``work()`` in a transaction, run again if the database chose it as a deadlock
        victim (MySQL) or stayed busy (SQLite)."""
        for attempt in range(attempts):
            try:
                with self.transaction():
                    return work()
            except _Retry:
                if attempt == attempts - 1:
                    raise DatabaseError("the database stayed busy (deadlocks)") from None
                time.sleep(0.05 * (attempt + 1))
        return None

    def _begin(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ named locks

    def get_lock(self, name: str, owner: str) -> bool:
        """Take the named lock without waiting (mogilefsd's ``get_lock(name, 0)``)."""
        raise NotImplementedError

    def release_lock(self, name: str, owner: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ keys

    def key_param(self, key: str) -> Any:
        """A ``dkey`` value as the database stores it."""
        return key

    def key_text(self, value: Any) -> str:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    def prefix_clause(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        """``column`` starts with ``prefix``: a clause and its parameters."""
        raise NotImplementedError

    # ------------------------------------------------------------------ schema

    def create_schema(self) -> None:
        """Create every missing table (mogdbsetup) and record the schema version."""
        for table in schema.TABLES:
            for statement in self.ddl(table):
                self.execute(statement)
        self.execute(
            f"{self.insert_ignore} INTO server_settings (field, value) VALUES (?, ?)",
            ("schema_version", str(schema.SCHEMA_VERSION)),
        )

    def ddl(self, table: schema.Table) -> list[str]:
        raise NotImplementedError

    def schema_version(self) -> int:
        try:
            value = self.scalar("SELECT value FROM server_settings WHERE field='schema_version'")
        except DatabaseError:
            raise
        except Exception:
            return 0
        return int(value or 0)

    def check_schema(self) -> None:
        version = self.schema_version()
        if version != schema.SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.url}: schema version is {version or 'missing'}, not "
                f"{schema.SCHEMA_VERSION}: create it first (mogilefs-faketracker --setup-db)"
            )


class _Retry(Exception):
    """Internal: the transaction lost a deadlock; run it again."""


class SQLiteDatabase(Database):
    dialect = "sqlite"
    insert_ignore = "INSERT OR IGNORE"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        if not self.path.parent.is_dir():
            raise DatabaseError(f"{self.path.parent} is not a directory (for {self.path.name})")
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    raise DatabaseError(f"{self.path} is not an SQLite database")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _run(self, statement: str, params: Params) -> sqlite3.Cursor:
        try:
            return self._conn().execute(statement, tuple(params))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise Duplicate(str(exc)) from exc
            raise
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if busy and self._local.depth:
                raise _Retry() from exc
            raise

    def _begin(self) -> None:
        try:
            self._conn().execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _Retry() from exc

    def get_lock(self, name: str, owner: str) -> bool:
        def take() -> bool:
            row = self.one("SELECT owner, acquiredat FROM lock WHERE lockid=?", (name,))
            if row is not None and row[0] != owner and row[1] > time.time() - LOCK_LIFETIME:
                return False
            self.execute(
                "REPLACE INTO lock (lockid, owner, acquiredat) VALUES (?, ?, ?)",
                (name, owner, time.time()),
            )
            return True

        return bool(self.retrying(take))

    def release_lock(self, name: str, owner: str) -> None:
        self.execute("DELETE FROM lock WHERE lockid=? AND owner=?", (name, owner))

    def key_param(self, key: str) -> bytes:
        return to_bytes(key)

    def key_text(self, value: Any) -> str:
        return from_bytes(value) if isinstance(value, bytes) else str(value)

    def prefix_clause(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        if not prefix:
            return "1=1", []
        low = to_bytes(prefix)
        high = _successor(low)
        if high is None:
            return f"{column} >= ?", [low]
        return f"{column} >= ? AND {column} < ?", [low, high]

    def ddl(self, table: schema.Table) -> list[str]:
        return schema.sqlite_ddl(table)


def _successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class MySQLDatabase(Database):
    dialect = "mysql"
    insert_ignore = "INSERT IGNORE"
    _placeholder = re.compile(r"\?")

    def __init__(self, host: str, port: int, user: str, password: str, database: str) -> None:
        super().__init__()
        try:
            import pymysql
        except ImportError:
            raise DatabaseError(
                "the fake tracker's MySQL store needs PyMySQL (pip install PyMySQL)"
            ) from None
        self._pymysql = pymysql
        self._args = {
            "host": host,
            "port": port,
            "user": user,
            "password": password,
            "database": database,
            "charset": "utf8mb4",
            "autocommit": True,
            "connect_timeout": 5,
            "read_timeout": 60,
            "write_timeout": 60,
        }
        self.url = f"mysql://{user}@{host}:{port}/{database}"
        self._sql_cache: dict[str, str] = {}

    def _connect(self) -> Any:
        try:
            return self._pymysql.connect(**self._args)
        except self._pymysql.err.OperationalError as exc:
            raise DatabaseError(f"{self.url}: {exc.args[-1] if exc.args else exc}") from exc

    def sql(self, statement: str) -> str:
        cached = self._sql_cache.get(statement)
        if cached is None:
            cached = self._placeholder.sub("%s", statement.replace("%", "%%"))
            self._sql_cache[statement] = cached
        return cached

    def _run(self, statement: str, params: Params) -> Any:
        err = self._pymysql.err
        for attempt in (1, 2):
            in_transaction = bool(getattr(self._local, "depth", 0))
            try:
                cursor = self._conn().cursor()
                cursor.execute(statement, tuple(params) or None)
                return cursor
            except err.IntegrityError as exc:
                if exc.args and exc.args[0] == _MYSQL_DUPLICATE:
                    raise Duplicate(str(exc)) from exc
                raise
            except err.OperationalError as exc:
                code = exc.args[0] if exc.args else 0
                if code in _MYSQL_DEADLOCK and in_transaction:
                    raise _Retry() from exc
                if code not in _MYSQL_LOST:
                    raise
                self._drop()  # the server went away (restarted, restored): reconnect
                if in_transaction or attempt == 2:
                    raise DatabaseError(f"{self.url}: {exc.args[-1]}") from exc
            except err.InterfaceError as exc:
                self._drop()
                if in_transaction or attempt == 2:
                    raise DatabaseError(f"{self.url}: {exc}") from exc
        raise AssertionError("unreachable")

    def _begin(self) -> None:
        self._run("BEGIN", ())

    def get_lock(self, name: str, owner: str) -> bool:
        # GET_LOCK belongs to the connection: this thread's, which also releases it.
        return bool(self.scalar("SELECT GET_LOCK(?, 0)", (name[-64:],)))

    def release_lock(self, name: str, owner: str) -> None:
        self.execute("SELECT RELEASE_LOCK(?)", (name[-64:],))

    def prefix_clause(self, column: str, prefix: str) -> tuple[str, list[Any]]:
        escaped = re.sub(r"([%_\\])", r"\\\1", prefix)
        return f"{column} LIKE ? ESCAPE '\\\\'", [escaped + "%"]

    def ddl(self, table: schema.Table) -> list[str]:
        return schema.mysql_ddl(table)


def open_database(url: str | Path) -> Database:
    """A :class:`Database` from a path or a ``sqlite:///`` / ``mysql://`` URL."""
    text = str(url)
    if "://" not in text:
        return SQLiteDatabase(text)
    parts = urlsplit(text)
    if parts.scheme == "sqlite":
        return SQLiteDatabase(unquote(parts.path))
    if parts.scheme == "mysql":
        database = parts.path.lstrip("/")
        if not (parts.hostname and database):
            raise DatabaseError(f"{text}: expected mysql://user:password@host[:port]/database")
        return MySQLDatabase(
            parts.hostname,
            parts.port or 3306,
            unquote(parts.username or ""),
            unquote(parts.password or ""),
            database,
        )
    raise DatabaseError(f"{text}: unsupported database (use sqlite:///PATH or mysql://...)")
