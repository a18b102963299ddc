"""The tracker database's tables, as mogdbsetup 2.73 creates them (schema version 17).

One description, two dialects: MySQL gets the real column types (and inherits the
database's collation, as the real tables do: key comparison is the database's), SQLite
the same tables with the types it understands. Keys are stored as SQLite BLOBs so any
byte string round-trips and compares byte-wise, as MySQL's binary collations do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 17


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, MySQL type and constraints)
    primary: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    auto_increment: str | None = None  # the column MySQL numbers itself
    sqlite_only: bool = False  # the real SQLite store's extra table
    sqlite_types: dict[str, str] = field(default_factory=dict)  # where SQLite differs


_STATUS_HOST = "ENUM('alive','dead','down','readonly')"
_STATUS_DEVICE = "ENUM('alive','dead','down','readonly','drain')"

TABLES: tuple[Table, ...] = (
    Table(
        "domain",
        (("dmid", "SMALLINT UNSIGNED NOT NULL"), ("namespace", "VARCHAR(255)")),
        primary=("dmid",),
        unique=(("namespace",),),
    ),
    Table(
        "class",
        (
            ("dmid", "SMALLINT UNSIGNED NOT NULL"),
            ("classid", "TINYINT UNSIGNED NOT NULL"),
            ("classname", "VARCHAR(50)"),
            ("mindevcount", "TINYINT UNSIGNED NOT NULL"),
            ("replpolicy", "VARCHAR(255)"),
            ("hashtype", "TINYINT UNSIGNED"),
        ),
        primary=("dmid", "classid"),
        unique=(("dmid", "classname"),),
    ),
    Table(
        "file",
        (
            ("fid", "BIGINT UNSIGNED NOT NULL"),
            ("dmid", "SMALLINT UNSIGNED NOT NULL"),
            ("dkey", "VARCHAR(255)"),
            ("length", "BIGINT UNSIGNED"),
            ("classid", "TINYINT UNSIGNED NOT NULL"),
            ("devcount", "TINYINT UNSIGNED NOT NULL"),
        ),
        primary=("fid",),
        unique=(("dmid", "dkey"),),
        indexes=(("dmid", "classid", "devcount"),),
        sqlite_types={"dkey": "BLOB"},
    ),
    Table(
        "tempfile",
        (
            ("fid", "BIGINT UNSIGNED NOT NULL"),
            ("createtime", "INT UNSIGNED NOT NULL"),
            ("classid", "TINYINT UNSIGNED NOT NULL"),
            ("dmid", "SMALLINT UNSIGNED NOT NULL"),
            ("dkey", "VARCHAR(255)"),
            ("devids", "VARCHAR(60)"),
        ),
        primary=("fid",),
        auto_increment="fid",
        sqlite_types={"dkey": "BLOB"},
    ),
    Table("file_to_delete", (("fid", "BIGINT UNSIGNED NOT NULL"),), primary=("fid",)),
    Table(
        "unreachable_fids",
        (("fid", "BIGINT UNSIGNED NOT NULL"), ("lastupdate", "INT UNSIGNED NOT NULL")),
        primary=("fid",),
        indexes=(("lastupdate",),),
    ),
    Table(
        "file_on",
        (("fid", "BIGINT UNSIGNED NOT NULL"), ("devid", "MEDIUMINT UNSIGNED NOT NULL")),
        primary=("fid", "devid"),
        indexes=(("devid",),),
    ),
    Table(
        "file_on_corrupt",
        (("fid", "BIGINT UNSIGNED NOT NULL"), ("devid", "MEDIUMINT UNSIGNED NOT NULL")),
        primary=("fid", "devid"),
    ),
    Table(
        "host",
        (
            ("hostid", "MEDIUMINT UNSIGNED NOT NULL"),
            ("status", _STATUS_HOST),
            ("http_port", "MEDIUMINT UNSIGNED DEFAULT 7500"),
            ("http_get_port", "MEDIUMINT UNSIGNED"),
            ("hostname", "VARCHAR(40)"),
            ("hostip", "VARCHAR(15)"),
            ("altip", "VARCHAR(15)"),
            ("altmask", "VARCHAR(18)"),
        ),
        primary=("hostid",),
        unique=(("hostname",), ("hostip",), ("altip",)),
    ),
    Table(
        "device",
        (
            ("devid", "MEDIUMINT UNSIGNED NOT NULL"),
            ("hostid", "MEDIUMINT UNSIGNED NOT NULL"),
            ("status", _STATUS_DEVICE),
            ("weight", "MEDIUMINT DEFAULT 100"),
            ("mb_total", "INT UNSIGNED"),
            ("mb_used", "INT UNSIGNED"),
            ("mb_asof", "INT UNSIGNED"),
        ),
        primary=("devid",),
        indexes=(("status",),),
    ),
    Table(
        "server_settings",
        (("field", "VARCHAR(50) NOT NULL"), ("value", "TEXT")),
        primary=("field",),
    ),
    Table(
        "file_to_replicate",
        (
            ("fid", "BIGINT UNSIGNED NOT NULL"),
            ("nexttry", "INT UNSIGNED NOT NULL"),
            ("fromdevid", "INT UNSIGNED"),
            ("failcount", "TINYINT UNSIGNED NOT NULL DEFAULT 0"),
            ("flags", "SMALLINT UNSIGNED NOT NULL DEFAULT 0"),
        ),
        primary=("fid",),
        indexes=(("nexttry",),),
    ),
    Table(
        "file_to_delete_later",
        (("fid", "BIGINT UNSIGNED NOT NULL"), ("delafter", "INT UNSIGNED NOT NULL")),
        primary=("fid",),
        indexes=(("delafter",),),
    ),
    Table(
        "fsck_log",
        (
            ("logid", "INT UNSIGNED NOT NULL"),
            ("utime", "INT UNSIGNED NOT NULL"),
            ("fid", "BIGINT UNSIGNED NULL"),
            ("evcode", "CHAR(4)"),
            ("devid", "MEDIUMINT UNSIGNED"),
        ),
        primary=("logid",),
        indexes=(("utime",),),
        auto_increment="logid",
    ),
    Table(
        "file_to_queue",
        (
            ("fid", "BIGINT UNSIGNED NOT NULL"),
            ("devid", "INT UNSIGNED"),
            ("type", "TINYINT UNSIGNED NOT NULL"),
            ("nexttry", "INT UNSIGNED NOT NULL"),
            ("failcount", "TINYINT UNSIGNED NOT NULL DEFAULT 0"),
            ("flags", "SMALLINT UNSIGNED NOT NULL DEFAULT 0"),
            ("arg", "TEXT"),
        ),
        primary=("fid", "type"),
        indexes=(("type", "nexttry"),),
    ),
    Table(
        "file_to_delete2",
        (
            ("fid", "BIGINT UNSIGNED NOT NULL"),
            ("nexttry", "INT UNSIGNED NOT NULL"),
            ("failcount", "TINYINT UNSIGNED NOT NULL DEFAULT 0"),
        ),
        primary=("fid",),
        indexes=(("nexttry",),),
    ),
    Table(
        "checksum",
        (
            ("fid", "BIGINT UNSIGNED NOT NULL"),
            ("hashtype", "TINYINT UNSIGNED NOT NULL"),
            ("checksum", "VARBINARY(64) NOT NULL"),
        ),
        primary=("fid",),
    ),
    # Named locks: MySQL has GET_LOCK(); the SQLite store keeps them in a table.
    Table(
        "lock",
        (
            ("lockid", "VARCHAR(255) NOT NULL"),
            ("owner", "VARCHAR(255) NOT NULL"),
            ("acquiredat", "DOUBLE NOT NULL"),
        ),
        primary=("lockid",),
        sqlite_only=True,
    ),
)


def _index_name(table: Table, columns: tuple[str, ...]) -> str:
    return f"{table.name}_{'_'.join(columns)}"


def mysql_ddl(table: Table) -> list[str]:
    if table.sqlite_only:
        return []
    lines = []
    for name, kind in table.columns:
        extra = " AUTO_INCREMENT" if name == table.auto_increment else ""
        lines.append(f"`{name}` {kind}{extra}")
    lines.append(f"PRIMARY KEY ({', '.join(f'`{c}`' for c in table.primary)})")
    lines += [f"UNIQUE KEY ({', '.join(f'`{c}`' for c in u)})" for u in table.unique]
    lines += [f"KEY ({', '.join(f'`{c}`' for c in i)})" for i in table.indexes]
    body = ",\n  ".join(lines)
    return [f"CREATE TABLE IF NOT EXISTS `{table.name}` (\n  {body}\n) ENGINE=InnoDB"]


def sqlite_ddl(table: Table) -> list[str]:
    lines = []
    for name, kind in table.columns:
        if name == table.auto_increment:
            lines.append(f'"{name}" INTEGER PRIMARY KEY AUTOINCREMENT')
            continue
        kind = table.sqlite_types.get(name, kind)
        if kind.startswith("ENUM("):
            kind = f'VARCHAR(10) CHECK ("{name}" IN {kind[4:]})'
        lines.append(f'"{name}" {kind}')
    if table.auto_increment is None:
        lines.append(f"PRIMARY KEY ({', '.join(table.primary)})")
    lines += [f"UNIQUE ({', '.join(u)})" for u in table.unique]
    statements = [f'CREATE TABLE IF NOT EXISTS "{table.name}" (\n  ' + ",\n  ".join(lines) + "\n)"]
    statements += [
        f'CREATE INDEX IF NOT EXISTS "{_index_name(table, i)}" ON "{table.name}" ({", ".join(i)})'
        for i in table.indexes
    ]
    return statements
