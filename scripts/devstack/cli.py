"""The command line: ``up`` (foreground until Ctrl-C, or ``--detach``), ``down``, ``status``.

``up`` writes ``<var>/supervisor.json`` (its pid, start time and the site URL once
ready); ``down`` signals that process, waits for it to stop the services, then stops
anything still listed in ``<var>/processes.json`` (after a crash of the supervisor).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .config import ROOT, StackConfig
from .deps import MissingPackages
from .net import http_status
from .procs import alive, read_record, reap_record, running_in_record, start_time
from .stack import DevStack, StackError, wait_forever

ENTRY_POINT = ROOT / "scripts" / "dev.py"

STAFF_USER = "staff"
DETACH_TIMEOUT = 240.0
DOWN_TIMEOUT = 40.0


class Terminated(Exception):
    """SIGTERM or SIGHUP: stop the stack like Ctrl-C does."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signal.Signals(signum).name)


def _state_path(var: Path) -> Path:
    return var / "supervisor.json"


def _read_state(var: Path) -> dict:
    try:
        return json.loads(_state_path(var).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(var: Path, **state: object) -> None:
    path = _state_path(var)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def _supervisor_alive(state: dict) -> bool:
    return bool(state) and alive(int(state["pid"]), state.get("started"))


def staff_password(environ: Mapping[str, str] = os.environ) -> str:
    """The staff password compose uses too: ``$SECRETS_DIR/staff_password``.

    ``SECRETS_DIR`` defaults to ``secrets/dev`` (relative paths are the repository's,
    as in compose), so one password logs in to ``/status/`` under ``make up`` and
    ``make dev`` alike.
    """
    folder = ROOT / (environ.get("SECRETS_DIR") or "secrets/dev")
    path = folder / "staff_password"
    try:
        password = path.read_text().strip()
    except OSError as exc:
        raise StackError(
            f"cannot read the staff password from {path} ({exc.strerror}); "
            "set SECRETS_DIR to the folder that holds staff_password"
        ) from None
    if not password:
        raise StackError(f"{path} is empty: put the staff password in it")
    return password


def cmd_up(config: StackConfig, detach: bool) -> int:
    var = config.var_dir.resolve()
    state = _read_state(var)
    if _supervisor_alive(state):
        print(f"devstack: already running (pid {state['pid']}): {state.get('site_url', '')}")
        print("devstack: stop it with: make dev-down")
        return 1
    if detach:
        return _up_detached(config)

    # Started in the background by a non-interactive shell, Python ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGHUP, _raise_terminated)
    stack = DevStack(config)
    pid = os.getpid()
    _write_state(var, pid=pid, started=start_time(pid), ready=False)
    try:
        try:
            stack.start()
            password = staff_password()
            stack.create_staff(STAFF_USER, password)
        except (StackError, MissingPackages) as exc:
            print(f"devstack: error: {exc}", file=sys.stderr)
            return 1
        _write_state(var, pid=pid, started=start_time(pid), ready=True, site_url=stack.site_url)
        mode = (
            f"existing cluster {','.join(stack.trackers)}, domain {stack.domain}"
            if config.external
            else f"fake trackers {', '.join(stack.trackers)}, 3 Perlbal storage nodes"
        )
        print(
            f"\nThe avatar site is ready at {stack.site_url}  ({mode})\n"
            f"  staff login for {stack.site_url}/status/: {STAFF_USER} / {password}"
            " (from $SECRETS_DIR/staff_password, as in compose)\n"
            f"  logs: {var / 'logs'}/   stop: Ctrl-C or make dev-down\n",
            flush=True,
        )
        reason = wait_forever(stack)
        print(f"devstack: error: {reason}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated):
        return 0
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("devstack: stopping...", file=sys.stderr, flush=True)
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            _state_path(var).unlink()
        print("devstack: stopped.", file=sys.stderr, flush=True)


def _up_detached(config: StackConfig) -> int:
    """Start ``up`` in the background (own session), return once the site is ready."""
    var = config.var_dir.resolve()
    var.mkdir(parents=True, exist_ok=True)
    log = var / "devstack.log"
    argv = [sys.executable, str(ENTRY_POINT), "up", "--var-dir", str(var)]
    if config.debug:
        argv.append("--debug")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + DETACH_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(log.read_text(errors="replace"), file=sys.stderr)
            print(f"devstack: error: the stack did not start (see {log})", file=sys.stderr)
            return 1
        state = _read_state(var)
        if state.get("ready") and state.get("pid") == proc.pid:
            print(log.read_text(errors="replace").rstrip())
            return 0
        time.sleep(0.25)
    print(f"devstack: error: not ready after {DETACH_TIMEOUT:g}s (see {log})", file=sys.stderr)
    proc.send_signal(signal.SIGTERM)
    return 1


def cmd_down(config: StackConfig) -> int:
    var = config.var_dir.resolve()
    state = _read_state(var)
    if _supervisor_alive(state):
        pid = int(state["pid"])
        print(f"devstack: stopping the stack (pid {pid})...")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + DOWN_TIMEOUT
        while alive(pid, state.get("started")) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid, state.get("started")):
            os.kill(pid, signal.SIGKILL)
    leftovers = reap_record(var / "processes.json")
    if leftovers:
        print(f"devstack: stopped left-over processes: {', '.join(leftovers)}")
    with contextlib.suppress(FileNotFoundError):
        _state_path(var).unlink()
    if not state and not leftovers:
        print("devstack: nothing was running.")
    else:
        print("devstack: stopped.")
    return 0


def cmd_status(config: StackConfig) -> int:
    var = config.var_dir.resolve()
    state = _read_state(var)
    record = var / "processes.json"
    running = set(running_in_record(record))
    if not _supervisor_alive(state) and not running:
        print("devstack: not running.")
        return 3
    sup = state.get("pid", "?")
    print(f"devstack: supervisor pid {sup}, {'ready' if state.get('ready') else 'starting'}")
    for name, entry in read_record(record).items():
        print(f"  {name:20} pid {entry['pid']:>7}  {'up' if name in running else 'DOWN'}")
    url = state.get("site_url")
    if url:
        host, _, port = url.removeprefix("http://").partition(":")
        code = http_status(host, int(port), "/healthz")
        print(f"  {url}/healthz -> {code if code is not None else 'no answer'}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dev.py",
        description="The native stack (no Docker): fake tracker, 3 Perlbal storage nodes, "
        "memcached, gunicorn, the media tier (granian) and Perlbal in front on "
        "http://127.0.0.1:8080. With MOGILEFS_TRACKERS (and MOGILEFS_DOMAIN) set, that "
        "cluster is used instead.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--var-dir", type=Path, help="state, logs and pid files (var/dev)")
    parser.add_argument("--detach", action="store_true", help="up: return once ready")
    parser.add_argument("--debug", action="store_true", help="up: DJANGO_DEBUG on")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, object] = {"debug": args.debug}
    if args.var_dir:
        overrides["var_dir"] = args.var_dir
    config = StackConfig.from_env(**overrides)
    if args.command == "up":
        return cmd_up(config, args.detach)
    if args.command == "down":
        return cmd_down(config)
    return cmd_status(config)
