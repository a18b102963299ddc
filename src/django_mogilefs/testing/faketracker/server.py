"""The fake tracker: a threaded TCP server in front of query workers and background jobs."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import re
import shutil
import socket
import socketserver
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from django_mogilefs.nodes import StorageHTTP

from .commands import Commands
from .db import SQLiteDatabase, open_database
from .monitor import Monitor
from .observe import ClusterView, Observations
from .protocol import from_bytes, parse_request, to_bytes
from .store import Store
from .workers import Deleter, Fsck, JobMaster, Reaper, Replicator, Todo, Worker

log = logging.getLogger("faketracker")
_ADMIN = re.compile(r"!(\S+)(?:\s+(.+))?", re.DOTALL)
HELP = (
    "Mogile Admin Help:\n\n"
    "    !version    shows server version\n"
    "    !recent     shows recently processed queries\n"
    "    !queue      shows queries that are pending\n"
    "    !stats      shows runtime statistics\n"
    "    !watch      enables/disables watching of error messages\n"
    "    !jobs       shows the number of child process for each job type\n"
    "    !shutdown   immediately shut down the server\n\n"
    "    !to <job class> <message>\n"
    "                sends <message> to all children of <job class>\n\n"
    "    !want <count> <job class>\n"
    "                alter child count of class <job class> to <count>\n\n"
)


@dataclass(frozen=True)
class TrackerConfig:
    """Timings and staffing. Defaults follow mogilefsd 2.73 where it has one."""

    monitor_interval: float = 1.0  # mogilefsd: 2.5 s
    test_write_interval: float = 15.0  # Monitor.pm UPDATE_DB_EVERY
    admin_delay: float = 0.0  # extra sleep in every admin change (the real ones took ≤2.5 s)
    replicate_poll: float = 1.0  # job_master queue poll
    replicate_min_delay: float = 0.3  # no replica sooner after its grab (real: fastest 0.31 s)
    reaper_delay: float = 16.0  # a dead device's copies are forgotten this long after
    query_workers: int = 4
    replicate_workers: int = 2
    http_timeout: float = 2.0  # conn_timeout
    version: str = "2.73"
    hostname: str = ""  # MogileFS::Config->hostname (fsck_host, rebal_host): the machine's


class _Pending:
    """One request waiting for a query worker."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.reply = ""
        self.done = threading.Event()


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.tracker.serve_connection(self.request)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    tracker: FakeTracker


class FakeTracker:
    """A MogileFS 2.73 tracker look-alike; see the package docstring.

    ``store``: share another tracker's :class:`Store` (two mogilefsd on one database);
    ``database``: a path or URL for :func:`.db.open_database`; neither: a private SQLite
    database in a temporary directory, removed with the last tracker using it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: TrackerConfig | None = None,
        *,
        store: Store | None = None,
        database: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> None:
        self.config = replace(config or TrackerConfig(), **overrides)
        if store is None:
            store = Store(open_database(database) if database else private_database())
            store.db.create_schema() if database is None else store.db.check_schema()
        self.store = store
        self.hostname = self.config.hostname or socket.gethostname()
        self.owner = f"{self.hostname}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.observations = Observations()
        self._stop_after: str | None = None
        self._placement_hints: list[list[int]] = []
        self.replicate_work: queue.Queue[Todo | None] = queue.Queue()
        self.delete_work: queue.Queue[Todo | None] = queue.Queue()
        self._claimed: dict[tuple[str, int], Todo] = {}
        self.stats: collections.Counter[str] = collections.Counter(
            dict.fromkeys(
                (
                    "queries",
                    "times_out_of_qworkers",
                    "work_queue_for_delete",
                    "work_queue_for_replicate",
                    "work_sent_to_delete",
                    "work_sent_to_replicate",
                ),
                0,
            )
        )
        self.http = StorageHTTP((self.config.http_timeout, self.config.http_timeout))
        self.monitor = Monitor(self)
        self._bind = (host, port)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._jobs: dict[str, list[threading.Thread]] = {}
        self._queries: queue.Queue[_Pending | None] = queue.Queue()
        self._busy = 0
        self._conns: dict[socket.socket, threading.Lock] = {}
        self._watchers: set[socket.socket] = set()
        self._recent: collections.deque[str] = collections.deque(maxlen=20)
        self._last_error = ""
        self._guard = threading.Lock()
        self._started = time.time()
        self._stopping = False
        self.executor = Commands(self)  # for direct, socket-less use (unit tests)

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            return self._bind
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def hostport(self) -> str:
        return "{}:{}".format(*self.address)

    def start(self, *, workers: bool = True) -> FakeTracker:
        """Listen and start the jobs (``workers=False``: no monitor/replication/delete)."""
        self._server = _Server(self._bind, _Handler)
        self._server.tracker = self
        self.startup_self_test()
        if workers:
            self._add_job("monitor", self.monitor)
            self._add_job("job_master", JobMaster(self))
            for _ in range(self.config.replicate_workers):
                self._add_job("replicate", Replicator(self, self.replicate_work))
            self._add_job("delete", Deleter(self, self.delete_work))
            self._add_job("reaper", Reaper(self))
            self._add_job("fsck", Fsck(self))
        for n in range(self.config.query_workers):
            thread = threading.Thread(
                target=self._query_worker, name=f"faketracker-query{n}", daemon=True
            )
            self._add_job("queryworker", thread)
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="faketracker-listener",
            daemon=True,
        )
        serve.start()
        self._threads.append(serve)
        return self

    def startup_self_test(self) -> None:
        """The MySQL store's start-up self-test registers a tempfile (dmid 99): every
        mogilefsd start uses up one fid, so the first file of a fresh cluster is fid 2."""
        self.store.register_tempfile(None, 99, "_server_startup_test", 0, "")

    def _add_job(self, job: str, thread: threading.Thread) -> None:
        self._jobs.setdefault(job, []).append(thread)
        self._threads.append(thread)
        thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop listening, close every connection, stop every thread."""
        if self._stopping:
            return
        self._stopping = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._guard:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            if isinstance(thread, Worker):
                thread.stop()
        for _ in range(self.config.query_workers):
            self._queries.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.http.close()
        self._unclaim()

    def _unclaim(self) -> None:
        """Make the queue rows this tracker grabbed and never finished due again, so the
        other trackers take them at once (a mogilefsd leaves them for 1000 s)."""
        with self._guard:
            todos, self._claimed = list(self._claimed.values()), {}
        tables = {"replicate": "file_to_replicate", "delete": "file_to_delete2"}
        for todo in todos:
            with contextlib.suppress(Exception):
                if todo.kind == "rebalance":
                    self.store.unclaim("file_to_queue", [todo.row.fid], 2)
                else:
                    self.store.unclaim(tables[todo.kind], [todo.row.fid])

    def __enter__(self) -> FakeTracker:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def wake(self, job: str) -> None:
        for thread in self._jobs.get(job, []):
            if isinstance(thread, Worker):
                thread.wake.set()

    # ------------------------------------------------------------------ test hooks

    def view(self) -> ClusterView:
        """Hosts and devices from the database, as this tracker's monitor sees them."""
        return ClusterView.load(self.store, self.observations)

    def count(self, stat: str, n: int = 1) -> None:
        with self._guard:
            self.stats[stat] += n

    def hand_out(self, todo: Todo, work: queue.Queue[Todo | None]) -> None:
        with self._guard:
            self._claimed[(todo.kind, todo.row.fid)] = todo
        work.put(todo)

    def done(self, todo: Todo) -> None:
        with self._guard:
            self._claimed.pop((todo.kind, todo.row.fid), None)

    def hint_placement(self, devids: list[int]) -> None:
        """Ask the next create_open to use these devices, in this order.

        The hint is ignored unless every device is one the tracker would pick anyway
        (alive, observed writeable, on an alive host, with space), so it cannot make the
        fake accept a placement the real tracker would refuse.
        """
        with self._guard:
            self._placement_hints.append(list(devids))

    def clear_placement_hints(self) -> None:
        with self._guard:
            self._placement_hints.clear()

    def take_placement_hint(self) -> list[int] | None:
        with self._guard:
            return self._placement_hints.pop(0) if self._placement_hints else None

    def observe(self, devid: int, observed: str = "writeable", **usage: int | None) -> None:
        """Test hook: record a monitor observation of ``devid`` (and its host as
        reachable), as if this tracker's monitor had just made it."""
        dev = self.store.device(devid)
        if dev is None:
            raise KeyError(f"no device {devid}")
        self.observations.update(devid, observed=observed, **usage)
        self.observations.set_host(dev.hostid, "reachable")

    def stop_after(self, command: str) -> None:
        """Stop the tracker the next time it has run ``command``, before it answers.

        The command's effect stays (as a mogilefsd that commits and is then stopped by
        SIGTERM); the client sees its connection closed without an answer.
        """
        with self._guard:
            self._stop_after = command

    def note_error(self, message: str) -> None:
        """MogileFS::Util::error: remembered as "last error" and sent to !watch-ers."""
        log.debug("%s", message)
        with self._guard:
            self._last_error = message
            watchers = list(self._watchers)
        for conn in watchers:
            self._send(conn, to_bytes(f"{message}\r\n"))

    def last_error(self) -> str:
        with self._guard:
            return self._last_error

    def execute(self, line: str) -> str:
        """Run one request line without a socket (as a query worker would)."""
        return self.executor.execute(line)

    # ------------------------------------------------------------------ connections

    def serve_connection(self, conn: socket.socket) -> None:
        with self._guard:
            self._conns[conn] = threading.Lock()
        buf = b""
        try:
            while not self._stopping:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf and not self._stopping:
                    raw, buf = buf.split(b"\n", 1)
                    line = from_bytes(raw[:-1] if raw.endswith(b"\r") else raw)
                    if line:  # an empty line gets no answer at all
                        self._send(conn, to_bytes(self._answer(conn, line)))
        except OSError:
            pass
        finally:
            with self._guard:
                self._conns.pop(conn, None)
                self._watchers.discard(conn)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        with self._guard:
            lock = self._conns.get(conn)
        if lock is None:
            return
        with lock, contextlib.suppress(OSError):
            conn.sendall(data)

    def _answer(self, conn: socket.socket, line: str) -> str:
        admin = _ADMIN.fullmatch(line)
        if admin:
            return self._admin(conn, admin.group(1), admin.group(2) or "")
        pending = _Pending(line)
        with self._guard:
            self._recent.append(line)
            if self._busy + self._queries.qsize() >= self.config.query_workers:
                self.stats["times_out_of_qworkers"] += 1
        self._queries.put(pending)
        while not pending.done.wait(0.5):
            if self._stopping:
                return ""
        parsed = parse_request(line)
        with self._guard:
            stop = parsed is not None and parsed[0] == self._stop_after
            if stop:
                self._stop_after = None
        if stop:
            log.info("stopping after %s, before answering it (stop_after)", line.split()[0])
            self.shutdown()
            return ""
        return pending.reply + "\r\n"

    def _query_worker(self) -> None:
        commands = Commands(self)
        while True:
            pending = self._queries.get()
            if pending is None:
                self.store.db.release_thread()
                return
            with self._guard:
                self._busy += 1
            try:
                pending.reply = commands.execute(pending.line)
            finally:
                with self._guard:
                    self._busy -= 1
                pending.done.set()

    # ------------------------------------------------------------------ admin (!) commands

    def _admin(self, conn: socket.socket, cmd: str, args: str) -> str:
        """Connection/Client.pm handle_admin_command: plain lines, then ``.``."""
        out: list[str] = []
        if re.fullmatch("stats", cmd):
            out = self._stats()
        elif cmd.startswith("shutdown"):
            threading.Thread(target=self.shutdown, daemon=True).start()
        elif cmd.startswith("jobs"):
            out = self._jobs_report()
        elif cmd.startswith("want"):
            out = ["ERROR: usage: !want <count> <jobclass>"]
            match = re.match(r"(\d+)\s+(\S+)", args)
            if match and match.group(2) in self._jobs:
                out = [
                    f"Now desiring {min(int(match.group(1)), 500)} children doing "
                    f"'{match.group(2)}'."
                ]
            elif match:
                out = [
                    f"ERROR: Invalid class '{match.group(2)}'.  Valid classes: "
                    + ", ".join(sorted(self._jobs))
                ]
        elif cmd.startswith("to"):
            match = re.match(r"(\S+)\s+(.+)", args)
            out = [
                f"Message sent to {len(self._jobs.get(match.group(1), []))} children."
                if match
                else "ERROR: usage: !to <jobclass> <message>"
            ]
        elif cmd.startswith(("queue", "pend")):
            with self._queries.mutex:
                out = [p.line for p in self._queries.queue if p is not None]
        elif cmd.startswith("watch"):
            with self._guard:
                if conn in self._watchers:
                    self._watchers.discard(conn)
                    out = ["Removed you from watcher list."]
                else:
                    self._watchers.add(conn)
                    out = ["Added you to watcher list."]
        elif cmd.startswith("recent"):
            with self._guard:
                out = list(self._recent)
        elif cmd.startswith("version"):
            out = [self.config.version]
        else:
            return HELP + ".\r\n"
        return "".join(f"{line}\r\n" for line in out) + ".\r\n"

    def _stats(self) -> list[str]:
        with self._guard:
            busy = self._busy
        pending = self._queries.qsize()
        with self._guard:
            self.stats["work_queue_for_replicate"] = self.replicate_work.qsize()
            self.stats["work_queue_for_delete"] = self.delete_work.qsize()
            stats = {k: v for k, v in self.stats.items() if not k.startswith("work_sent_to_reb")}
        return [
            f"uptime {int(time.time() - self._started)}",
            f"pending_queries {pending}",
            f"processing_queries {busy}",
            f"bored_queryworkers {self.config.query_workers - busy}",
            *(f"{k} {stats[k]}" for k in sorted(stats)),
        ]

    def _jobs_report(self) -> list[str]:
        out = []
        for job in sorted(self._jobs):
            threads = [t for t in self._jobs[job] if t.is_alive()]
            pids = " ".join(str(t.native_id or os.getpid()) for t in threads)
            out += [
                f"{job} count {len(threads)}",
                f"{job} desired {len(self._jobs[job])}",
                f"{job} pids {pids}",
            ]
        return out


def private_database() -> SQLiteDatabase:
    """An SQLite database in a new temporary directory, removed when it is collected."""
    directory = tempfile.mkdtemp(prefix="faketracker-")
    db = SQLiteDatabase(Path(directory) / "tracker.sqlite3")
    weakref.finalize(db, shutil.rmtree, directory, True)
    return db
