"""``python -m faketracker --listen 127.0.0.1:7001 [--monitor-interval 1.0] [--admin-delay 0]``."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import FakeTracker, TrackerConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="faketracker", description="A fake MogileFS 2.73 tracker (in memory) for tests."
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:7001", help="host:port (default %(default)s)"
    )
    parser.add_argument("--monitor-interval", type=float, default=TrackerConfig.monitor_interval)
    parser.add_argument(
        "--admin-delay",
        type=float,
        default=TrackerConfig.admin_delay,
        help="extra seconds every admin change takes (real: up to 2.5)",
    )
    parser.add_argument(
        "--test-write-interval", type=float, default=TrackerConfig.test_write_interval
    )
    parser.add_argument("--replicate-poll", type=float, default=TrackerConfig.replicate_poll)
    parser.add_argument("--query-workers", type=int, default=TrackerConfig.query_workers)
    parser.add_argument("-v", "--verbose", action="store_true")
    opts = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if opts.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    host, _, port = opts.listen.rpartition(":")
    tracker = FakeTracker(
        host or "127.0.0.1",
        int(port),
        monitor_interval=opts.monitor_interval,
        admin_delay=opts.admin_delay,
        test_write_interval=opts.test_write_interval,
        replicate_poll=opts.replicate_poll,
        query_workers=opts.query_workers,
    ).start()
    logging.getLogger("faketracker").info("fake MogileFS tracker listening on %s", tracker.hostport)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5) and not tracker.stopping:
        pass
    tracker.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
