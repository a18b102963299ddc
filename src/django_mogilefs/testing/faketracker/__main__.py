"""``mogilefs-faketracker [--listen HOST:PORT] [--state-file PATH] [options]``.

The same as ``python -m django_mogilefs.testing.faketracker``.

Every option also reads an environment variable (for compose), used when the option is
not given: ``FAKETRACKER_LISTEN``, ``FAKETRACKER_STATE_FILE``,
``FAKETRACKER_MONITOR_INTERVAL``, ``FAKETRACKER_ADMIN_DELAY``,
``FAKETRACKER_TEST_WRITE_INTERVAL``, ``FAKETRACKER_REPLICATE_POLL``,
``FAKETRACKER_QUERY_WORKERS``. Without a state file the state lives in memory.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .server import FakeTracker, TrackerConfig
from .statefile import StateFileError, file_state

ENV_PREFIX = "FAKETRACKER_"


def _env(option: str, default: object) -> object:
    """The default of ``--option``: ``FAKETRACKER_OPTION`` if set, else ``default``."""
    return os.environ.get(ENV_PREFIX + option.upper().replace("-", "_"), default)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mogilefs-faketracker",
        description="A fake MogileFS 2.73 tracker for tests. Each option's default comes "
        "from the environment variable FAKETRACKER_<OPTION> (e.g. FAKETRACKER_STATE_FILE).",
    )
    parser.add_argument(
        "--listen", default=_env("listen", "127.0.0.1:7001"), help="host:port (%(default)s)"
    )
    parser.add_argument(
        "--state-file",
        default=_env("state-file", None),
        help="share and keep the state in this file (a pickle, locked with <file>.lock); "
        "trackers given the same file act as trackers on one database",
    )
    numbers: list[tuple[str, type, object, str]] = [
        ("monitor-interval", float, TrackerConfig.monitor_interval, "seconds between rounds"),
        ("admin-delay", float, TrackerConfig.admin_delay, "extra seconds per admin change"),
        ("test-write-interval", float, TrackerConfig.test_write_interval, "seconds"),
        ("replicate-poll", float, TrackerConfig.replicate_poll, "seconds"),
        ("query-workers", int, TrackerConfig.query_workers, "threads"),
    ]
    for name, kind, default, text in numbers:
        parser.add_argument(
            f"--{name}", type=kind, default=_env(name, default), help=f"{text} (%(default)s)"
        )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    opts = parser.parse_args(argv)
    host, _, port = opts.listen.rpartition(":")
    if not port.isdigit():
        parser.error(f"--listen/FAKETRACKER_LISTEN: expected host:port, got {opts.listen!r}")
    logging.basicConfig(
        level=logging.DEBUG if opts.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        state = file_state(opts.state_file) if opts.state_file else None
    except (StateFileError, OSError) as exc:
        print(f"faketracker: --state-file/FAKETRACKER_STATE_FILE: {exc}", file=sys.stderr)
        return 2
    tracker = FakeTracker(
        host or "127.0.0.1",
        int(port),
        state=state,
        monitor_interval=opts.monitor_interval,
        admin_delay=opts.admin_delay,
        test_write_interval=opts.test_write_interval,
        replicate_poll=opts.replicate_poll,
        query_workers=opts.query_workers,
    ).start()
    logging.getLogger("faketracker").info(
        "fake MogileFS tracker listening on %s (state: %s)",
        tracker.hostport,
        opts.state_file or "in memory",
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5) and not tracker.stopping:
        pass
    tracker.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
