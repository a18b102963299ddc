"""Rebalancing, as MogileFS::Rebalance 2.73 does it: a policy, a state, and a job.

The policy (``rebal_policy`` server setting, ``key=value`` words, lists comma-separated)
picks source devices and destination devices; ``rebalance_start`` records the state
(``rebal_state``, the same ``key=value`` form) and makes the tracker it was sent to the
rebalance host (``rebal_host``). That tracker's job master then takes the source devices
one at a time: it marks the device ``drain``, queues its files in batches
(file_to_queue, type 2, with the allowed destinations), and, once the device has no
more files to queue, sets it ``alive`` again unless the policy says
``leave_in_drain_mode=1``. A replicate worker moves each queued file: it copies it to a
destination (the policy must still be happy without the source copy) and then deletes
the source copy, so no file ever has fewer copies than before.
"""

from __future__ import annotations

import random
import re
import time
from typing import TYPE_CHECKING, Any

from .base import Args, CommandBase, CommandError
from .observe import DeviceView
from .store import REBAL_QUEUE

if TYPE_CHECKING:
    from .server import FakeTracker

QUEUE_MAX = 10_000  # DEF_REBAL_QUEUE_MAX
QUEUE_INJECT = 500  # DEF_REBAL_QUEUE_INJECT

# The default policy (its list-valued keys are lists) and state, as Rebalance.pm has them.
DEFAULT_POLICY: dict[str, Any] = {
    "from_all_devs": "1",
    "from_hosts": [],
    "from_devices": [],
    "from_percent_used": None,
    "from_percent_free": None,
    "from_space_used": None,
    "from_space_free": None,
    "fid_age": "old",
    "limit_type": "device",
    "limit_by": "none",
    "limit": None,
    "to_all_devs": "1",
    "to_hosts": [],
    "to_devices": [],
    "to_percent_used": None,
    "to_percent_free": None,
    "to_space_used": None,
    "to_space_free": None,
    "not_to_hosts": [],
    "not_to_devices": [],
    "use_dest_devs": "all",
    "leave_in_drain_mode": "0",
}
DEFAULT_STATE: dict[str, Any] = {
    "completed_devs": [],
    "source_devs": [],
    "sdev_current": "0",
    "sdev_lastfid": "0",
    "sdev_limit": "0",
    "limit": "0",
    "fids_queued": "0",
    "bytes_queued": "0",
    "time_started": "0",
    "time_finished": "0",
    "time_stopped": "0",
    "time_latest_run": "0",
    "time_latest_empty_run": "0",
    "empty_runs": "0",
}


class PolicyError(ValueError):
    """A policy string with a key Rebalance.pm does not know (``bad_rebal_pol``)."""


def parse_settings(text: str | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """Rebalance::_parse_settings: ``key=value`` words over the defaults."""
    parsed = {k: list(v) if isinstance(v, list) else v for k, v in defaults.items()}
    for word in (text or "").split():
        key, _, value = word.partition("=")
        value = value.split("=", 1)[0]
        if key not in defaults:
            raise PolicyError(f"Invalid setting {key}")
        if "," in value:
            parsed[key] = value.split(",")
        elif isinstance(defaults[key], list):
            parsed[key] = [value]
        else:
            parsed[key] = value
    return parsed


def save_settings(settings: dict[str, Any]) -> str:
    """Rebalance::_save_settings: ``key=value`` words in hash (here: random) order."""
    words = [
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else '' if v is None else v}"
        for k, v in settings.items()
    ]
    random.shuffle(words)
    return " ".join(words)


def _ids(values: list[Any]) -> list[int]:
    """The device or host ids of a list value; "" and 0 (Perl-false) are none."""
    return [int(v) for v in values if str(v).isdigit() and int(v)]


def _num(value: Any) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


class Rebalance:
    def __init__(self, policy: str, state: str | None = None) -> None:
        self.policy = parse_settings(policy, DEFAULT_POLICY)
        self.state = parse_settings(state, DEFAULT_STATE) if state else None

    def init(self, devices: list[DeviceView]) -> None:
        self.state = parse_settings("", DEFAULT_STATE)
        self.state["source_devs"] = [str(d) for d in self.filter_source_devices(devices)]
        self.state["time_started"] = str(int(time.time()))

    def save(self) -> str:
        assert self.state is not None
        return save_settings(self.state)

    # ------------------------------------------------------------------ filters

    def filter_source_devices(self, devices: list[DeviceView]) -> list[int]:
        p = self.policy
        out = []
        for dev in sorted(devices, key=lambda d: d.devid):
            if not dev.can_delete_from:
                continue
            if p["from_devices"] and dev.devid not in _ids(p["from_devices"]):
                continue
            if p["from_hosts"] and dev.hostid not in _ids(p["from_hosts"]):
                continue
            if not self._space_ok(dev, "from"):
                continue
            out.append(dev.devid)
        return out

    def filter_dest_devices(self, devices: list[DeviceView]) -> list[int]:
        p, s = self.policy, self.state or DEFAULT_STATE
        skip = set(_ids(s["source_devs"])) | set(_ids(s["completed_devs"]))
        skip |= set(_ids([s.get("sdev_current", "0")]))
        out = []
        for dev in sorted(devices, key=lambda d: d.devid):
            if dev.devid in skip or not dev.should_get_new_files:
                continue
            if p["to_devices"] and dev.devid not in _ids(p["to_devices"]):
                continue
            if p["to_hosts"] and dev.hostid not in _ids(p["to_hosts"]):
                continue
            if dev.devid in _ids(p["not_to_devices"]) or dev.hostid in _ids(p["not_to_hosts"]):
                continue
            if not self._space_ok(dev, "to"):
                continue
            out.append(dev.devid)
        return out

    def _space_ok(self, dev: DeviceView, side: str) -> bool:
        p = self.policy
        full = dev.percent_full
        used_limit = p[f"{side}_percent_used"]
        if used_limit and (full is None or full * 100 <= _num(used_limit)):
            return False
        if p[f"{side}_percent_free"]:
            free = dev.percent_free * 100
            if not free or free <= _num(p[f"{side}_percent_free"]):
                return False
        if p[f"{side}_space_used"] and not (
            dev.mb_used and dev.mb_used > _num(p[f"{side}_space_used"])
        ):
            return False
        return not (
            p[f"{side}_space_free"]
            and not (dev.mb_free and dev.mb_free > _num(p[f"{side}_space_free"]))
        )


def inject(tracker: FakeTracker) -> None:
    """JobMaster::_inject_rebalance_queues, on the rebalance host only."""
    store = tracker.store
    if store.setting("rebal_host") != tracker.hostname:
        return
    if store.queue_length(REBAL_QUEUE) >= QUEUE_MAX:
        return
    policy = store.setting("rebal_policy") or ""
    saved = store.setting("rebal_state")
    rebal = Rebalance(policy, saved)
    view = tracker.view()
    devices = list(view.devices.values())
    if rebal.state is None:
        rebal.init(devices)
    state = rebal.state
    assert state is not None
    if store.setting("rebal_signal") == "stop":
        # Rebalance::stop means to undrain the current device but reads it from the
        # wrong hash, so a 2.73 tracker leaves it in drain: so does this one.
        state["time_stopped"] = str(int(time.time()))
        store.set_setting("rebal_signal", None)
        store.set_setting("rebal_host", None)
        store.set_setting("rebal_state", rebal.save())
        return
    batch = _next_batch(tracker, rebal, devices)
    if batch is None:  # nothing left: the run is over, its state kept for inspection
        state["time_finished"] = str(int(time.time()))
        store.set_setting("rebal_state", rebal.save())
        store.set_setting("rebal_host", None)
        return
    if batch:
        store.enqueue_todo(batch, REBAL_QUEUE)
    store.set_setting("rebal_state", rebal.save())


def _next_batch(
    tracker: FakeTracker, rebal: Rebalance, devices: list[DeviceView]
) -> list[tuple[int, int | None, str | None]] | None:
    """Rebalance::next_fids_to_rebalance: None when done, [] to try again next round."""
    store, state, policy = tracker.store, rebal.state, rebal.policy
    assert state is not None
    current = _ids([state.get("sdev_current", "0")])
    if not current:
        sources = [s for s in state["source_devs"] if str(s).isdigit()]
        if not sources:
            return None
        sdev = int(sources[0])
        state["source_devs"] = sources[1:]
        state["sdev_current"] = str(sdev)
        state["sdev_lastfid"] = "0"
        state["sdev_limit"] = _limit(policy)
        store.set_device_state(sdev, "drain")  # no new files while it is emptied
    else:
        sdev = current[0]
    dests = rebal.filter_dest_devices(devices)
    if not dests:
        tracker.note_error("rebalance cannot find suitable destination devices")
        return []
    lastfid = int(state.get("sdev_lastfid") or 0)
    fids = store.fids_on_device(sdev, lastfid, QUEUE_INJECT)
    if not fids or not _within_limits(policy, state, None):
        _finish_source_device(tracker, rebal)
        return []
    state["sdev_lastfid"] = str(fids[-1])
    batch = []
    for fid in fids:
        row = store.file_by_fid(fid)
        if row is None or not _within_limits(policy, state, row.length):
            continue
        chosen = random.sample(dests, len(dests))
        if policy["use_dest_devs"] != "all":
            chosen = chosen[: int(_num(policy["use_dest_devs"]))]
        state["fids_queued"] = str(int(_num(state["fids_queued"])) + 1)
        state["bytes_queued"] = str(int(_num(state["bytes_queued"])) + row.length)
        batch.append((fid, sdev, ",".join(map(str, chosen))))
    state["time_latest_run"] = str(int(time.time()))
    if not batch:
        state["empty_runs"] = str(int(_num(state["empty_runs"])) + 1)
        state["time_latest_empty_run"] = state["time_latest_run"]
    return batch


def _limit(policy: dict[str, Any]) -> str:
    if policy["limit_type"] != "device":
        return "0"
    if policy["limit_by"] == "size":
        return str(_human_to_bytes(str(policy["limit"])))
    if policy["limit_by"] == "count":
        return str(policy["limit"])
    return "none"


def _human_to_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)([bkmgtp])?", text, re.IGNORECASE)
    if not match:
        raise PolicyError(f"Don't know what this number is: {text}")
    digits, unit = int(match.group(1)), (match.group(2) or "b").lower()
    return digits * 1024 ** "bkmgtp".index(unit)


def _within_limits(policy: dict[str, Any], state: dict[str, Any], length: int | None) -> bool:
    """Rebalance::_check_limits (``length`` None: is there room at all)."""
    if policy["limit_by"] == "none":
        return True
    key = "limit" if policy["limit_type"] == "global" else "sdev_limit"
    left = int(_num(state.get(key)))
    if policy["limit_by"] == "count":
        if length is None:
            return left > 0
        state[key] = str(left - 1)
        return left > 0
    if length is None:
        return left >= 1024
    if length <= left:
        state[key] = str(left - length)
        return True
    return False


def _finish_source_device(tracker: FakeTracker, rebal: Rebalance) -> None:
    state = rebal.state
    assert state is not None
    sdev = state.pop("sdev_current", "0")
    state.pop("sdev_lastfid", None)
    state.pop("sdev_limit", None)
    if rebal.policy["leave_in_drain_mode"] in ("0", "", None) and str(sdev).isdigit():
        tracker.store.set_device_state(int(sdev), "alive")
    # An empty list is saved as "" and read back as [""]: 2.73's completed_devs starts
    # with a comma (",31,22").
    state["completed_devs"] = [*state["completed_devs"], str(sdev)]


class RebalanceCommands(CommandBase):
    """Query.pm's rebalance_* commands."""

    def cmd_rebalance_status(self, args: Args) -> dict[str, str]:
        state = self.store.setting("rebal_state")
        if not state:
            raise CommandError("no_rebal_state")
        return {"state": state}

    def cmd_rebalance_start(self, args: Args) -> dict[str, str]:
        if self.store.setting("rebal_host"):
            raise CommandError("rebal_running", "rebalance is already running")
        if self.store.setting("fsck_host"):
            raise CommandError("fsck_running", "fsck running; cannot run rebalance at same time")
        state = self.store.setting("rebal_state")
        if not state:
            policy = self.store.setting("rebal_policy")
            if not policy:
                raise CommandError("no_rebal_policy")
            rebal = Rebalance(policy)
            rebal.init(list(self.tracker.view().devices.values()))
            state = rebal.save()
            self.store.set_setting("rebal_state", state)
        self.store.set_setting("rebal_host", self.tracker.hostname)
        return {"state": state}

    def cmd_rebalance_test(self, args: Args) -> dict[str, str]:
        policy = self.store.setting("rebal_policy")
        if not policy:
            raise CommandError("no_rebal_policy")
        rebal = Rebalance(policy)
        devices = list(self.tracker.view().devices.values())
        rebal.init(devices)
        return {
            "sdevs": ",".join(map(str, rebal.filter_source_devices(devices))),
            "ddevs": ",".join(map(str, rebal.filter_dest_devices(devices))),
        }

    def cmd_rebalance_reset(self, args: Args) -> None:
        if self.store.setting("rebal_host"):
            raise CommandError("rebal_running", "rebalance is running")
        self.store.set_setting("rebal_state", None)

    def cmd_rebalance_stop(self, args: Args) -> None:
        if not self.store.setting("rebal_host"):
            raise CommandError("rebal_not_started")
        self.store.set_setting("rebal_signal", "stop")

    def cmd_rebalance_set_policy(self, args: Args) -> None:
        if self.store.setting("rebal_host"):
            raise CommandError(
                "no_set_rebal", "cannot change rebalance policy while rebalance is running"
            )
        try:
            Rebalance(args.get("policy") or "")
        except PolicyError as exc:
            # croak() names its caller's line, as a tracker run from its source tree shows.
            text = f"{exc} at lib/MogileFS/Worker/Query.pm line 1738.\n"
            raise CommandError("bad_rebal_pol", text) from None
        self.store.set_setting("rebal_policy", args.get("policy"))
        self.store.set_setting("rebal_state", None)
