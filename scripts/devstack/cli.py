"""``dev.py [--var-dir DIR] up [--isolated]|down|status|reset|stop NAME|start NAME``.

``up`` runs in the foreground until Ctrl-C (or ``down`` from another shell); the others talk
to the stack of ``--var-dir`` (``var/dev``, make dev's). ``stop``/``start`` take compose's
service names (``mogstored2``, ``mogilefsd``, ``media``...): the e2e suite's fault commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .config import ROOT, StackConfig, StackError
from .stack import DevStack, reset

NOT_RUNNING = 3  # as an init script's status; `make dev-status` takes it as an answer


def cmd_up(stack: DevStack) -> int:
    # SIGTERM and SIGHUP stop it as Ctrl-C does (which a background shell may have ignored).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    try:
        stack.start()
        user, password = stack.staff_login()
        what = "existing cluster" if stack.config.external else "fake trackers"
        print(
            f"\nThe avatar site is ready at {stack.site_url}  ({what} {','.join(stack.trackers)})"
            f"\n  staff login for {stack.site_url}/status/: {user} / {password}"
            f" (from $SECRETS_DIR/staff_password, as in compose)"
            f"\n  logs: {stack.var / 'logs'}/   stop: Ctrl-C or make dev-down\n",
            flush=True,
        )
        status = stack.wait()
        print(f"devstack: supervisord has stopped (exit status {status})", file=sys.stderr)
        return 0 if status == 0 else 1
    except KeyboardInterrupt:
        return 0
    except StackError as exc:
        print(f"devstack: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut this short
            signal.signal(sig, signal.SIG_IGN)
        print("devstack: stopping...", file=sys.stderr, flush=True)
        stack.stop()
        print("devstack: stopped.", file=sys.stderr, flush=True)


def cmd_status(stack: DevStack) -> int:
    if not stack.running():
        print(f"devstack: not running (nothing answers on {stack.var / 'supervisor.sock'}).")
        return NOT_RUNNING
    print(f"devstack: running from {stack.var}: {stack.site_url}")
    down = []
    standby = {name for name, service in stack.services().items() if service.standby}
    for info in stack.info():
        name, state = info["name"], info["statename"]
        note = " (standby: dev.py start NAME)" if name in standby else ""
        print(f"  {name:18} {state:9} {info['description']}{note}")
        if name in standby or (name, info["exitstatus"]) == ("bootstrap", 0):
            continue
        if state not in ("RUNNING", "STARTING"):
            down.append(name)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no http_proxy
    try:
        with direct.open(f"{stack.site_url}/healthz", timeout=5) as response:
            answer = response.status
    except OSError as exc:
        answer = exc
    print(f"  {stack.site_url}/healthz -> {answer}")
    return 1 if down or answer != 200 else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py", description=__doc__.split("\n\n")[1])
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var" / "dev", help="(var/dev)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start it; Ctrl-C stops it (the data is kept)")
    up.add_argument("--debug", action="store_true", help="DJANGO_DEBUG on")
    up.add_argument("--isolated", action="store_true", help="free ports, own loopback addresses")
    sub.add_parser("down", help="stop it")
    sub.add_parser("status", help=f"exit 0: all up, 1: not all, {NOT_RUNNING}: not running")
    sub.add_parser("reset", help="delete the kept data: database, stored files, tracker state")
    for verb in ("stop", "start"):
        sub.add_parser(verb, help=f"{verb} one service").add_argument("service")
    args = parser.parse_args(argv)

    var = args.var_dir.resolve()
    saved = StackConfig.saved(var)
    if args.command == "up":  # make dev's addresses, or those an isolated var dir keeps
        config = StackConfig.from_env(var_dir=var)
        if args.isolated:
            config = saved or StackConfig.isolated(var)
        return cmd_up(DevStack(dataclasses.replace(config, debug=args.debug), echo=True))
    stack = DevStack(saved or StackConfig.from_env(var_dir=var), out=sys.stdout)
    if args.command == "status":
        return cmd_status(stack)
    running = stack.running()
    if args.command == "reset":
        if running:
            print("devstack: error: it is running; stop it first (make dev-down)")
            return 1
        print(f"devstack: removed from {var}: {', '.join(reset(var)) or 'nothing'}")
        return 0
    if not running:
        print("devstack: not running.")
        return 0 if args.command == "down" else NOT_RUNNING
    if args.command == "down":
        stack.stop()
        print("devstack: stopped.")
        return 0
    try:
        (stack.stop_service if args.command == "stop" else stack.start_service)(args.service)
    except StackError as exc:
        print(f"devstack: error: {exc}", file=sys.stderr)
        return 1
    return 0
