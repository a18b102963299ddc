"""Command dispatch, shared helpers and the small maintenance commands (Query.pm's cmd_*)."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable

from .admin import AdminCommands
from .base import Args, CommandError
from .db import DatabaseError
from .files import FileCommands
from .protocol import err_line, ok_line, parse_request, perl_num, perl_true
from .rebalance import RebalanceCommands

log = logging.getLogger("faketracker")

_CONFIG_PM = "lib/MogileFS/Config.pm"


class InvalidFormat(ValueError):
    """A server setting's value its cleaner refuses (``invalid_format``)."""


def _any(value: str | None) -> str | None:
    return value


def _del_if_blank(value: str | None) -> str | None:
    return value or None


def _bool(value: str | None) -> str:
    if not value or re.match(r"(0|f|off|n)", value, re.IGNORECASE):
        return "0"
    if re.match(r"(1|t|on|y)", value, re.IGNORECASE):
        return "1"
    raise InvalidFormat(f"Unknown format at {_CONFIG_PM} line 344.\n")


def _num(value: str | None) -> str:
    if not value:
        return "0"
    if re.fullmatch(r"\d+\n?", value):
        return value
    raise InvalidFormat(f"Must be numeric at {_CONFIG_PM} line 350.\n")


def _netmasks(value: str | None) -> str | None:
    for mask in re.split(r"[,\s]+", value or ""):
        try:
            ipaddress.ip_network(mask, strict=False)
        except ValueError:
            raise InvalidFormat(
                f"Doesn't match an acceptable netmask at {_CONFIG_PM} line 362.\n"
            ) from None
    return value


def _fsck_checksum(value: str | None) -> str | None:
    if value == "off":
        return "off"
    if value == "class":
        return None
    if value in ("MD5", "SHA-1"):
        return value
    raise InvalidFormat(f"Not a valid checksum algorithm at {_CONFIG_PM} line 394.\n")


def writable(key: str) -> Callable[[str | None], str | None] | None:
    """MogileFS::Config::server_setting_is_writable: the value's cleaner, or None."""
    if key.startswith("slave_"):
        return _del_if_blank
    if key in ("skip_devcount", "skip_mkcol", "case_sensitive_list_keys"):
        return _bool
    if key in ("memcache_ttl", "internal_queue_limit"):
        return _num
    if key in ("memcache_servers", "network_zones") or key.startswith("queue_"):
        return _any
    if key.startswith("zone_"):
        return _netmasks
    if key == "fsck_checksum":
        return _fsck_checksum
    return None


class Commands(FileCommands, AdminCommands, RebalanceCommands):
    """Executes one request line, like one query worker."""

    def execute(self, line: str) -> str:
        parsed = parse_request(line)
        if parsed is None:
            return err_line("unknown_command")
        cmd, args = parsed
        callid = args.get("callid")
        self.tracker.count("queries")
        handler: Callable[[Args], object] | None = getattr(self, f"cmd_{cmd}", None)
        if handler is None:
            return err_line("unknown_command", callid=callid)
        try:
            result = handler(args)
        except CommandError as exc:
            return err_line(exc.code, exc.text, callid)
        except DatabaseError as exc:  # Query.pm: the store died ("Database error")
            self.tracker.note_error(f"Error running command '{cmd}': {exc}")
            return err_line("db", callid=callid)
        except Exception as exc:  # Query.pm: any die becomes ERR failure
            log.exception("command %s failed", cmd)
            self.tracker.note_error(f"Error running command '{cmd}': {exc}")
            return err_line("failure", callid=callid)
        return ok_line(result, callid, self.rng)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ maintenance

    def cmd_noop(self, args: Args) -> None:
        return None

    def cmd_clear_cache(self, args: Args) -> object:
        return self.clear_cache()

    def cmd_do_monitor_round(self, args: Args) -> None:
        self.tracker.monitor.wait_for_round()

    def cmd_sleep(self, args: Args) -> None:
        duration = args.get("duration")
        time.sleep(perl_num(duration) if perl_true(duration) else 10)

    def cmd_test(self, args: Args) -> None:
        if perl_true(args.get("crash")):
            raise RuntimeError("Crashed on purpose")

    def cmd_replicate_now(self, args: Args) -> dict[str, int]:
        return {"count": self.store.replicate_now()}

    def cmd_server_settings(self, args: Args) -> list[tuple[str, object]]:
        items = list(self.store.settings().items())
        pairs: list[tuple[str, object]] = []
        for n, (key, value) in enumerate(items, 1):
            pairs += [(f"key_{n}", key), (f"value_{n}", value)]
        return [*pairs, ("key_count", len(items))] if items else []

    def cmd_server_setting(self, args: Args) -> dict[str, object]:
        key = args.get("key")
        if not perl_true(key):
            raise CommandError("bad_params")
        return {"key": key, "value": self.store.setting(key or "")}

    def cmd_set_server_setting(self, args: Args) -> None:
        key = args.get("key")
        if not perl_true(key) or key is None:
            raise CommandError("bad_params")
        clean = writable(key)
        if clean is None:
            raise CommandError("not_writable")
        try:
            value = clean(args.get("value"))
        except InvalidFormat as exc:
            raise CommandError("invalid_format", str(exc)) from None
        self.store.set_setting(key, value)
        if key.startswith("slave_"):
            version = int(self.store.setting("slave_version") or 0)
            self.store.set_setting("slave_version", version + 1)

    def cmd_fsck_status(self, args: Args) -> dict[str, object]:
        settings = self.store.settings()

        def num(name: str) -> object:
            return settings.get(name) or 0

        return {
            "running": 1 if settings.get("fsck_host") else 0,
            "host": settings.get("fsck_host"),
            "max_fid_checked": num("fsck_highest_fid_checked"),
            "policy_only": num("fsck_opt_policy_only"),
            "end_fid": num("fsck_fid_at_end"),
            "start_time": num("fsck_start_time"),
            "stop_time": num("fsck_stop_time"),
            "current_time": int(time.time()),
            "max_logid": 0,
            **{
                f"num_{k[17:]}": v for k, v in settings.items() if k.startswith("fsck_sum_evcount_")
            },
        }

    def cmd_fsck_start(self, args: Args) -> None:
        settings = self.store.settings()
        if settings.get("fsck_host"):
            raise CommandError("fsck_running", "fsck is already running")
        if settings.get("rebal_host"):
            raise CommandError("rebal_running", "rebalance running; cannot run fsck at same time")
        checked = int(settings.get("fsck_highest_fid_checked") or 0)
        final = int(settings.get("fsck_fid_at_end") or 0)
        if (checked and final and checked >= final) or not (checked or final):
            self.store.set_setting("fsck_highest_fid_checked", 0)
            self.store.set_setting("fsck_fid_at_end", self.store.max_fid())
        self.store.set_setting("fsck_stop_time", None)
        self.store.set_setting("fsck_start_time", int(time.time()))
        self.store.set_setting("fsck_host", self.tracker.hostname)
        self.tracker.wake("fsck")

    def cmd_fsck_stop(self, args: Args) -> None:
        self.store.set_setting("fsck_host", None)
        self.store.set_setting("fsck_stop_time", int(time.time()))

    def cmd_fsck_reset(self, args: Args) -> None:
        for key in ("fsck_start_time", "fsck_stop_time", "fsck_opt_policy_only"):
            self.store.set_setting(key, None)
        if perl_true(args.get("policy_only")):
            self.store.set_setting("fsck_opt_policy_only", 1)
        self.store.set_setting("fsck_highest_fid_checked", args.get("startpos") or "0")
        self.store.set_setting("fsck_fid_at_end", self.store.max_fid())

    def cmd_fsck_getlog(self, args: Args) -> dict[str, int]:
        return {"row_count": 0}

    def cmd_fsck_clearlog(self, args: Args) -> None:
        return None
