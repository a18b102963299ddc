"""Command dispatch, shared helpers and the small maintenance commands (Query.pm's cmd_*)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .admin import AdminCommands
from .base import Args, CommandError
from .db import DatabaseError
from .files import FileCommands
from .protocol import err_line, ok_line, parse_request, perl_num, perl_true
from .rebalance import RebalanceCommands

log = logging.getLogger("faketracker")

# Keys set_server_setting accepts (MogileFS::Config::server_setting_is_writable).
WRITABLE_SETTINGS = {
    "case_sensitive_list_keys",
    "enable_rebalance",
    "fsck_checksum",
    "internal_queue_limit",
    "memcache_servers",
    "memcache_ttl",
    "network_zones",
    "rebal_policy",
    "skip_devcount",
    "skip_mkcol",
    "slave_keys",
    "queue_size_for_replicate",
    "queue_rate_for_replicate",
    "queue_size_for_delete",
    "queue_rate_for_delete",
    "queue_size_for_fsck",
    "queue_rate_for_fsck",
}
WRITABLE_PREFIXES = ("slave_", "zone_")


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
        if key not in WRITABLE_SETTINGS and not key.startswith(WRITABLE_PREFIXES):
            raise CommandError("not_writable")
        value = args.get("value")
        self.store.set_setting(key, None if value in (None, "") else value)

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
