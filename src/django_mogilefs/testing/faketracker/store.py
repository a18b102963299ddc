"""The tracker's rows and the SQL that reads and writes them (MogileFS::Store's job).

Every method is one statement or one short transaction on the shared
:class:`~.db.Database`, with an index behind every lookup, so a request costs the same
with ten files as with a million. Times are Unix seconds from this process's clock
(mogilefsd uses the database's ``UNIX_TIMESTAMP()``; every fake in a cluster runs on
one machine or on synchronised ones).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .db import Database, Duplicate

HOST_STATES = ("alive", "down", "dead", "readonly")
DEVICE_STATES = ("alive", "dead", "down", "readonly", "drain")
DEFAULT_MINDEVCOUNT = 2  # the implicit class 0
HASH_TYPES = {"MD5": 1, "SHA-1": 2}  # MogileFS::Checksum: name -> type number
HASH_NAMES = {number: name for name, number in HASH_TYPES.items()}
HASH_BYTES = {"MD5": 16, "SHA-1": 20}
HASHLIB_NAMES = {"MD5": "md5", "SHA-1": "sha1"}
FSCK_QUEUE, REBAL_QUEUE = 1, 2  # file_to_queue.type
END_OF_TIME = 2**32 - 1  # Store::end_of_time: "never" for a queue row
CLAIM_SECONDS = 1000  # grab_queue_chunk: a grabbed row is due again after this


@dataclass
class Domain:
    dmid: int
    name: str


@dataclass
class ClassDef:
    dmid: int
    classid: int
    name: str
    mindevcount: int
    replpolicy: str = ""
    hashtype: str | None = None

    @property
    def policy_string(self) -> str:
        return self.replpolicy or "MultipleHosts()"

    @property
    def hashtype_string(self) -> str:
        return self.hashtype or "NONE"


def default_class(dmid: int) -> ClassDef:
    return ClassDef(dmid, 0, "default", DEFAULT_MINDEVCOUNT)


@dataclass
class Host:
    hostid: int
    hostname: str
    hostip: str
    status: str = "down"
    http_port: int | None = None
    http_get_port: int | None = None
    altip: str | None = None
    altmask: str | None = None

    def fields(self) -> dict[str, object]:
        return {
            "hostid": self.hostid,
            "status": self.status,
            "hostname": self.hostname,
            "hostip": self.hostip,
            "http_port": self.http_port,
            "http_get_port": self.http_get_port,
            "altip": self.altip,
            "altmask": self.altmask,
        }


@dataclass
class Device:
    devid: int
    hostid: int
    status: str = "alive"
    weight: int = 100
    mb_total: int | None = None
    mb_used: int | None = None
    mb_asof: int | None = None


@dataclass
class FileRow:
    fid: int
    dmid: int
    key: str
    length: int
    classid: int
    devcount: int


@dataclass
class TempFile:
    fid: int
    dmid: int
    key: str
    classid: int
    devids: str
    createtime: int


@dataclass
class Checksum:
    fid: int
    hashtype: str
    digest: bytes

    def info(self) -> str:
        return f"{self.hashtype}:{self.digest.hex()}"

    def __str__(self) -> str:  # MogileFS::Checksum::as_string
        return f"Checksum[f={self.fid};{self.hashtype}={self.digest.hex()}]"


@dataclass
class QueueRow:
    """A row of file_to_replicate, file_to_delete2 or file_to_queue."""

    fid: int
    nexttry: int
    failcount: int = 0
    fromdevid: int | None = None
    devid: int | None = None  # file_to_queue
    arg: str | None = None  # file_to_queue


_FILE = "fid, dmid, dkey, length, classid, devcount"
_HOST = "hostid, hostname, hostip, status, http_port, http_get_port, altip, altmask"
_DEVICE = "devid, hostid, status, weight, mb_total, mb_used, mb_asof"
_QUEUES = {
    "file_to_replicate": "fid, nexttry, failcount, fromdevid",
    "file_to_delete2": "fid, nexttry, failcount",
    "file_to_queue": "fid, nexttry, failcount, devid, arg",
}


def now() -> int:
    return int(time.time())


class Store:
    """The SQL of the fake tracker, on one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ rows

    def _file(self, row: Sequence[Any] | None) -> FileRow | None:
        if row is None:
            return None
        fid, dmid, key, length, classid, devcount = row
        return FileRow(
            int(fid), int(dmid), self.db.key_text(key), int(length or 0), classid, devcount
        )

    @staticmethod
    def _host(row: Sequence[Any]) -> Host:
        return Host(*row)

    @staticmethod
    def _device(row: Sequence[Any]) -> Device:
        devid, hostid, status, weight, total, used, asof = row
        return Device(devid, hostid, status, 100 if weight is None else weight, total, used, asof)

    # ------------------------------------------------------------------ settings

    def setting(self, field: str) -> str | None:
        return self.db.scalar("SELECT value FROM server_settings WHERE field=?", (field,))

    def settings(self) -> dict[str, str]:
        return dict(self.db.query("SELECT field, value FROM server_settings"))

    def set_setting(self, field: str, value: object) -> None:
        if value is None:
            self.db.execute("DELETE FROM server_settings WHERE field=?", (field,))
        else:
            self.db.execute(
                "REPLACE INTO server_settings (field, value) VALUES (?, ?)", (field, str(value))
            )

    # ------------------------------------------------------------------ domains, classes

    def domains(self) -> list[Domain]:
        return [Domain(int(d), n) for d, n in self.db.query("SELECT dmid, namespace FROM domain")]

    def domain_by_name(self, name: str | None) -> Domain | None:
        row = self.db.one("SELECT dmid, namespace FROM domain WHERE namespace=?", (name,))
        return Domain(int(row[0]), row[1]) if row else None

    def domain_by_id(self, dmid: int) -> Domain | None:
        row = self.db.one("SELECT dmid, namespace FROM domain WHERE dmid=?", (dmid,))
        return Domain(int(row[0]), row[1]) if row else None

    def create_domain(self, name: str) -> int:
        """Store::create_domain: MAX(dmid)+1; :class:`Duplicate` if the name is taken."""

        def insert() -> int:
            dmid = int(self.db.scalar("SELECT MAX(dmid) FROM domain") or 0) + 1
            self.db.execute("INSERT INTO domain (dmid, namespace) VALUES (?, ?)", (dmid, name))
            return dmid

        return self.db.retrying(insert)

    def delete_domain(self, dmid: int) -> None:
        self.db.execute("DELETE FROM domain WHERE dmid=?", (dmid,))

    def domain_has_files(self, dmid: int) -> bool:
        return self.db.one("SELECT fid FROM file WHERE dmid=? LIMIT 1", (dmid,)) is not None

    def classes(self, dmid: int | None = None) -> list[ClassDef]:
        """The explicit class rows (of one domain, or all)."""
        where, params = ("WHERE dmid=?", (dmid,)) if dmid is not None else ("", ())
        columns = "dmid, classid, classname, mindevcount, replpolicy, hashtype"
        rows = self.db.query(f"SELECT {columns} FROM class {where}", params)
        return [
            ClassDef(int(d), int(c), n, int(m), p or "", HASH_NAMES.get(h or 0))
            for d, c, n, m, p, h in rows
        ]

    def domain_classes(self, dmid: int) -> list[ClassDef]:
        """Every class of a domain, the implicit "default" (classid 0) first unless stored."""
        explicit = self.classes(dmid)
        if any(c.classid == 0 for c in explicit):
            return explicit
        return [default_class(dmid), *explicit]

    def class_by_id(self, dmid: int, classid: int) -> ClassDef | None:
        return next((c for c in self.domain_classes(dmid) if c.classid == classid), None)

    def class_by_name(self, dmid: int, name: str | None) -> ClassDef | None:
        return next((c for c in self.domain_classes(dmid) if c.name == name), None)

    def create_class(self, dmid: int, name: str, mindevcount: int) -> int:
        def insert() -> int:
            if name == "default":
                classid = 0
            else:
                top = self.db.scalar("SELECT MAX(classid) FROM class WHERE dmid=?", (dmid,))
                classid = int(top or 0) + 1
            self.db.execute(
                "INSERT INTO class (dmid, classid, classname, mindevcount) VALUES (?, ?, ?, ?)",
                (dmid, classid, name, mindevcount),
            )
            return classid

        return self.db.retrying(insert)

    def update_class(self, dmid: int, classid: int, **fields: object) -> None:
        for name, value in fields.items():
            if name == "hashtype":
                value = HASH_TYPES.get(str(value)) if value else None
            self.db.execute(
                f"UPDATE class SET {name}=? WHERE dmid=? AND classid=?", (value, dmid, classid)
            )

    def delete_class(self, dmid: int, classid: int) -> None:
        self.db.execute("DELETE FROM class WHERE dmid=? AND classid=?", (dmid, classid))

    def class_has_files(self, dmid: int, classid: int) -> bool:
        row = self.db.one(
            "SELECT fid FROM file WHERE dmid=? AND classid=? LIMIT 1", (dmid, classid)
        )
        return row is not None

    # ------------------------------------------------------------------ hosts, devices

    def hosts(self) -> list[Host]:
        return [self._host(r) for r in self.db.query(f"SELECT {_HOST} FROM host")]

    def host_by_name(self, name: str | None) -> Host | None:
        row = self.db.one(f"SELECT {_HOST} FROM host WHERE hostname=?", (name,))
        return self._host(row) if row else None

    def host_by_id(self, hostid: int) -> Host | None:
        row = self.db.one(f"SELECT {_HOST} FROM host WHERE hostid=?", (hostid,))
        return self._host(row) if row else None

    def create_host(self, hostname: str, ip: str) -> int:
        """Store::create_host: MAX(hostid)+1, status down; :class:`Duplicate` ("dup")."""

        def insert() -> int:
            hostid = int(self.db.scalar("SELECT MAX(hostid) FROM host") or 0) + 1
            self.db.execute(
                "INSERT INTO host (hostid, hostname, hostip, status) VALUES (?, ?, ?, 'down')",
                (hostid, hostname, ip),
            )
            return hostid

        return self.db.retrying(insert)

    def update_host(self, hostid: int, fields: dict[str, object]) -> None:
        if fields:
            names = sorted(fields)
            self.db.execute(
                f"UPDATE host SET {', '.join(f'{n}=?' for n in names)} WHERE hostid=?",
                [fields[n] for n in names] + [hostid],
            )

    def delete_host(self, hostid: int) -> None:
        self.db.execute("DELETE FROM host WHERE hostid=?", (hostid,))

    def devices(self) -> list[Device]:
        return [self._device(r) for r in self.db.query(f"SELECT {_DEVICE} FROM device")]

    def device(self, devid: int) -> Device | None:
        row = self.db.one(f"SELECT {_DEVICE} FROM device WHERE devid=?", (devid,))
        return self._device(row) if row else None

    def create_device(self, devid: int, hostid: int, status: str) -> None:
        self.db.execute(
            "INSERT INTO device (devid, hostid, status) VALUES (?, ?, ?)", (devid, hostid, status)
        )

    def set_device_state(self, devid: int, status: str) -> None:
        self.db.execute("UPDATE device SET status=? WHERE devid=?", (status, devid))

    def set_device_weight(self, devid: int, weight: int) -> None:
        self.db.execute("UPDATE device SET weight=? WHERE devid=?", (weight, devid))

    def update_device_usage(self, devid: int, mb_total: int, mb_used: int) -> None:
        self.db.execute(
            "UPDATE device SET mb_total=?, mb_used=?, mb_asof=? WHERE devid=?",
            (mb_total, mb_used, now(), devid),
        )

    def devices_have_files(self, devid: int) -> bool:
        return self.db.one("SELECT fid FROM file_on WHERE devid=? LIMIT 1", (devid,)) is not None

    # ------------------------------------------------------------------ files

    def file_by_key(self, dmid: int, key: str) -> FileRow | None:
        row = self.db.one(
            f"SELECT {_FILE} FROM file WHERE dmid=? AND dkey=?", (dmid, self.db.key_param(key))
        )
        return self._file(row)

    def file_by_fid(self, fid: int) -> FileRow | None:
        return self._file(self.db.one(f"SELECT {_FILE} FROM file WHERE fid=?", (fid,)))

    def devids(self, fid: int) -> list[int]:
        return sorted(
            int(d) for (d,) in self.db.query("SELECT devid FROM file_on WHERE fid=?", (fid,))
        )

    def add_file_on(self, fid: int, devid: int) -> None:
        """DevFID->add_to_db: the copy's row, then the file's devcount."""
        with self.db.transaction():
            self.db.execute(
                f"{self.db.insert_ignore} INTO file_on (fid, devid) VALUES (?, ?)", (fid, devid)
            )
            self._update_devcount(fid)

    def remove_file_on(self, fid: int, devid: int, *, recount: bool = True) -> None:
        """Forget one copy; ``recount=False`` leaves file.devcount as it was, as the
        reaper does (the next replication recounts)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM file_on WHERE fid=? AND devid=?", (fid, devid))
            if recount:
                self._update_devcount(fid)

    def _update_devcount(self, fid: int) -> None:
        count = self.db.scalar("SELECT COUNT(*) FROM file_on WHERE fid=?", (fid,))
        self.db.execute("UPDATE file SET devcount=? WHERE fid=?", (count, fid))

    def close_file(self, temp: TempFile, key: str, length: int, devid: int) -> FileRow | None:
        """create_close's commit: the key's old file (returned) is deleted, the new row,
        its first copy and its replication are written, all in one transaction."""
        with self.db.transaction():
            old = self.file_by_key(temp.dmid, key)
            if old is not None:
                self.delete_file(old.fid)
            self.db.execute(
                f"REPLACE INTO file ({_FILE}) VALUES (?, ?, ?, ?, ?, 1)",
                (temp.fid, temp.dmid, self.db.key_param(key), length, temp.classid),
            )
            self.db.execute(
                f"{self.db.insert_ignore} INTO file_on (fid, devid) VALUES (?, ?)",
                (temp.fid, devid),
            )
        return old

    def delete_file(self, fid: int) -> None:
        """Store::delete_fidid: drop the row; the delete job removes the copies."""
        with self.db.transaction():
            self.db.execute("DELETE FROM file WHERE fid=?", (fid,))
            self.db.execute("DELETE FROM file_to_replicate WHERE fid=?", (fid,))
            self.enqueue_delete(fid)

    def rename_file(self, fid: int, to_key: str) -> None:
        """:class:`Duplicate` if ``to_key`` is taken."""
        self.db.execute("UPDATE file SET dkey=? WHERE fid=?", (self.db.key_param(to_key), fid))

    def update_classid(self, fid: int, classid: int) -> None:
        self.db.execute("UPDATE file SET classid=? WHERE fid=?", (classid, fid))

    def list_keys(self, dmid: int, prefix: str, after: str, limit: int) -> list[str]:
        clause, params = self.db.prefix_clause("dkey", prefix)
        rows = self.db.query(
            f"SELECT dkey FROM file WHERE dmid=? AND {clause} AND dkey > ? "
            f"ORDER BY dkey LIMIT {int(limit)}",
            [dmid, *params, self.db.key_param(after)],
        )
        return [self.db.key_text(k) for (k,) in rows]

    def files_after(self, fid: int, limit: int) -> list[FileRow]:
        rows = self.db.query(
            f"SELECT {_FILE} FROM file WHERE fid > ? ORDER BY fid LIMIT {int(limit)}", (fid,)
        )
        return [f for f in map(self._file, rows) if f is not None]

    def fids_between(self, low: int, high: int, limit: int) -> list[int]:
        rows = self.db.query(
            f"SELECT fid FROM file WHERE fid > ? AND fid <= ? ORDER BY fid LIMIT {int(limit)}",
            (low, high),
        )
        return [int(f) for (f,) in rows]

    def max_fid(self) -> int:
        return int(self.db.scalar("SELECT MAX(fid) FROM file") or 0)

    def fids_on_device(self, devid: int, after: int = 0, limit: int = 100) -> list[int]:
        rows = self.db.query(
            f"SELECT fid FROM file_on WHERE devid=? AND fid > ? ORDER BY fid LIMIT {int(limit)}",
            (devid, after),
        )
        return [int(f) for (f,) in rows]

    # ------------------------------------------------------------------ tempfiles

    def register_tempfile(
        self, fid: int | None, dmid: int, key: str, classid: int, devids: str
    ) -> int:
        """Store::register_tempfile: the new fid (AUTO_INCREMENT unless given).

        An explicit fid that a tempfile or file holds raises :class:`Duplicate`; an
        automatic one that a file holds (the counter restarted below the files: a
        restored or emptied tempfile table) is skipped by reseeding past MAX(file.fid).
        """
        if fid:
            if self.file_by_fid(fid) is not None:
                raise Duplicate(f"fid {fid} is in use")
            self._insert_tempfile(fid, dmid, key, classid, devids)
            return fid
        new = self._insert_tempfile(None, dmid, key, classid, devids)
        if self.file_by_fid(new) is not None:
            self.db.execute("DELETE FROM tempfile WHERE fid=?", (new,))
            seed = self.max_fid()
            with contextlib.suppress(Duplicate):
                self._insert_tempfile(seed, dmid, key, classid, devids)
            self.db.execute("DELETE FROM tempfile WHERE fid=?", (seed,))
            new = self._insert_tempfile(None, dmid, key, classid, devids)
        return new

    def _insert_tempfile(
        self, fid: int | None, dmid: int, key: str, classid: int, devids: str
    ) -> int:
        columns = "dmid, dkey, classid, devids, createtime"
        values: list[Any] = [dmid, self.db.key_param(key), classid, devids, now()]
        if fid:
            columns, values = f"fid, {columns}", [fid, *values]
        cursor = self.db.execute(
            f"INSERT INTO tempfile ({columns}) VALUES ({', '.join('?' * len(values))})", values
        )
        return int(fid or cursor.lastrowid)

    def tempfile(self, fid: int) -> TempFile | None:
        row = self.db.one(
            "SELECT fid, dmid, dkey, classid, devids, createtime FROM tempfile WHERE fid=?", (fid,)
        )
        if row is None:
            return None
        fid, dmid, key, classid, devids, createtime = row
        return TempFile(
            int(fid), int(dmid), self.db.key_text(key or b""), classid, devids or "", createtime
        )

    def take_tempfile(self, fid: int) -> TempFile | None:
        """Store::delete_and_return_tempfile_row: the row if this call removed it."""
        row = self.tempfile(fid)
        if row is None:
            return None
        removed = self.db.execute("DELETE FROM tempfile WHERE fid=?", (fid,)).rowcount
        return row if removed else None

    def old_tempfiles(self, seconds: int, limit: int = 50) -> list[TempFile]:
        rows = self.db.query(
            f"SELECT fid FROM tempfile WHERE createtime < ? LIMIT {int(limit)}", (now() - seconds,)
        )
        return [t for (fid,) in rows if (t := self.tempfile(int(fid))) is not None]

    def forget_tempfiles(self, temps: Iterable[TempFile]) -> None:
        """Delete::process_tempfiles: an abandoned upload's devices get its copies deleted."""
        with self.db.transaction():
            for temp in temps:
                self.db.execute("DELETE FROM tempfile WHERE fid=?", (temp.fid,))
                if self.file_by_fid(temp.fid) is not None:
                    continue
                for devid in temp.devids.split(","):
                    if devid.isdigit():
                        self.db.execute(
                            f"{self.db.insert_ignore} INTO file_on (fid, devid) VALUES (?, ?)",
                            (temp.fid, int(devid)),
                        )
                self.enqueue_delete(temp.fid)

    # ------------------------------------------------------------------ checksums

    def checksum(self, fid: int) -> Checksum | None:
        row = self.db.one("SELECT hashtype, checksum FROM checksum WHERE fid=?", (fid,))
        if row is None or row[0] not in HASH_NAMES:
            return None
        return Checksum(fid, HASH_NAMES[row[0]], bytes(row[1]))

    def set_checksum(self, checksum: Checksum) -> None:
        self.db.execute(
            "REPLACE INTO checksum (fid, hashtype, checksum) VALUES (?, ?, ?)",
            (checksum.fid, HASH_TYPES[checksum.hashtype], checksum.digest),
        )

    # ------------------------------------------------------------------ queues

    def enqueue_replication(
        self, fid: int, in_seconds: float = 0, fromdevid: int | None = None
    ) -> None:
        nexttry = now() + int(in_seconds) if in_seconds else 0
        self.db.execute(
            f"{self.db.insert_ignore} INTO file_to_replicate (fid, fromdevid, nexttry) "
            "VALUES (?, ?, ?)",
            (fid, fromdevid, nexttry),
        )

    def enqueue_delete(self, fid: int, in_seconds: int = 0) -> None:
        self.db.execute(
            f"{self.db.insert_ignore} INTO file_to_delete2 (fid, nexttry) VALUES (?, ?)",
            (fid, now() + in_seconds),
        )

    def enqueue_todo(self, rows: Iterable[tuple[int, int | None, str | None]], kind: int) -> None:
        """file_to_queue rows ``(fid, devid, arg)`` of type ``kind``, due now."""
        with self.db.transaction():
            for fid, devid, arg in rows:
                self.db.execute(
                    f"{self.db.insert_ignore} INTO file_to_queue (fid, devid, arg, type, nexttry) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (fid, devid, arg, kind, now()),
                )

    def queue_length(self, kind: int) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM file_to_queue WHERE type=?", (kind,)) or 0)

    def queue_row(self, queue: str, fid: int, kind: int | None = None) -> QueueRow | None:
        where, params = ("AND type=?", [fid, kind]) if kind is not None else ("", [fid])
        row = self.db.one(f"SELECT {_QUEUES[queue]} FROM {queue} WHERE fid=? {where}", params)
        return self._queue_row(queue, row) if row else None

    @staticmethod
    def _queue_row(queue: str, row: Sequence[Any]) -> QueueRow:
        fid, nexttry, failcount, *rest = row
        if queue == "file_to_replicate":
            return QueueRow(int(fid), int(nexttry), int(failcount), fromdevid=rest[0])
        if queue == "file_to_queue":
            return QueueRow(int(fid), int(nexttry), int(failcount), devid=rest[0], arg=rest[1])
        return QueueRow(int(fid), int(nexttry), int(failcount))

    def grab(self, queue: str, limit: int, kind: int | None = None) -> list[QueueRow]:
        """Store::grab_queue_chunk: due rows, claimed by moving their nexttry 1000 s on."""
        where, params = ("AND type=?", [kind]) if kind is not None else ("", [])
        lock = " FOR UPDATE" if self.db.dialect == "mysql" else ""

        def take() -> list[QueueRow]:
            t = now()
            rows = self.db.query(
                f"SELECT {_QUEUES[queue]} FROM {queue} WHERE nexttry <= ? {where} "
                f"ORDER BY nexttry LIMIT {int(limit)}{lock}",
                [t, *params],
            )
            grabbed = [self._queue_row(queue, r) for r in rows]
            for row in grabbed:
                self.db.execute(
                    f"UPDATE {queue} SET nexttry=? WHERE fid=? {where}",
                    [t + CLAIM_SECONDS, row.fid, *params],
                )
            return grabbed

        return self.db.retrying(take)

    def unclaim(self, queue: str, fids: Iterable[int], kind: int | None = None) -> None:
        """Make rows this tracker grabbed but never worked on due again (it is stopping)."""
        where, params = ("AND type=?", [kind]) if kind is not None else ("", [])
        for fid in fids:
            self.db.execute(
                f"UPDATE {queue} SET nexttry=? WHERE fid=? AND nexttry > ? {where}",
                [now(), fid, now(), *params],
            )

    def dequeue(self, queue: str, fid: int, kind: int | None = None) -> None:
        where, params = ("AND type=?", [kind]) if kind is not None else ("", [])
        self.db.execute(f"DELETE FROM {queue} WHERE fid=? {where}", [fid, *params])

    def reschedule(
        self, queue: str, fid: int, in_seconds: int | None = None, *, at: int | None = None
    ) -> None:
        """One more failure: due again in ``in_seconds`` (or ``at`` an absolute time)."""
        when = at if at is not None else now() + int(in_seconds or 0)
        self.db.execute(
            f"UPDATE {queue} SET nexttry=?, failcount=failcount+1 WHERE fid=?", (when, fid)
        )

    def replicate_now(self) -> int:
        t = now()
        return int(
            self.db.execute(
                "UPDATE file_to_replicate SET nexttry=? WHERE nexttry > ?", (t, t)
            ).rowcount
        )
