"""Losing one of two trackers under load: 0 failed operations, nothing lost, no orphans.

Threads store, read and delete through one ``MogileFSClient`` over two trackers; a
quarter into the run the first tracker is stopped with the admin command ``!shutdown``
(mogilefsd sends itself SIGTERM), whatever it is doing at that moment. Then every key
still stored must read back byte for byte, and ``list_keys`` must list exactly those.

Against the fake pair (two fake trackers on one state) by default; set
``MOGILEFS_TRACKERS`` to two or more real trackers sharing one database (and
``MOGILEFS_DOMAIN``) to run the same test against them; the first one is stopped and
stays stopped. ``LOAD_THREADS`` (4) and ``LOAD_SECONDS`` (10) size the run.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.testing.cluster import MogileCluster
from django_mogilefs.tracker import parse_trackers

pytestmark = pytest.mark.integration

THREADS = int(os.environ.get("LOAD_THREADS", "4"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "10"))


@pytest.fixture(scope="module")
def two_trackers(
    request: pytest.FixtureRequest, make_fake_cluster: Callable[..., MogileCluster]
) -> Iterator[MogileCluster]:
    if os.environ.get("MOGILEFS_TRACKERS", "").strip():
        real: MogileCluster = request.getfixturevalue("mogile_cluster")
        if len(real.trackers) < 2:
            pytest.skip("MOGILEFS_TRACKERS names one tracker; losing one needs two")
        yield real
        return
    yield make_fake_cluster(trackers=2)


def stop_tracker(hostport: str) -> None:
    """``!shutdown``: the tracker stops at once, in-flight requests or not."""
    ((host, port),) = parse_trackers(hostport)
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"!shutdown\r\n")


@dataclass
class Worker:
    """One thread's keys (no other thread touches them) and its record."""

    client: MogileFSClient
    prefix: str
    rng: random.Random
    keys: dict[str, bytes] = field(default_factory=dict)
    ops: int = 0
    failures: list[str] = field(default_factory=list)

    def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            action = self.rng.choice(["store", "store", "read", "read", "delete"])
            try:
                getattr(self, action)()
            except Exception as exc:
                self.failures.append(f"{action}: {exc!r}")
            self.ops += 1

    def store(self) -> None:
        key = f"{self.prefix}{uuid.uuid4().hex}"
        body = self.rng.randbytes(self.rng.randrange(1, 4096))
        self.client.store(key, body, cls="thumb")
        self.keys[key] = body

    def read(self) -> None:
        if not self.keys:
            return self.store()
        key = self.rng.choice(list(self.keys))
        with self.client.open(key) as stream:
            assert stream.read() == self.keys[key], f"{key} read back different bytes"
        return None

    def delete(self) -> None:
        if not self.keys:
            return self.store()
        key = self.rng.choice(list(self.keys))
        self.client.delete(key)
        del self.keys[key]
        return None


def test_losing_one_of_two_trackers_under_load_fails_nothing(
    two_trackers: MogileCluster, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = two_trackers
    prefix = f"loadtest/{uuid.uuid4().hex}/"
    client = MogileFSClient(cluster.trackers, cluster.domain, dead_timeout=60)
    workers = [Worker(client, f"{prefix}{n}/", random.Random(n)) for n in range(THREADS)]
    deadline = time.monotonic() + SECONDS
    threads = [threading.Thread(target=w.run, args=(deadline,)) for w in workers]
    with caplog.at_level(logging.INFO, logger="django_mogilefs"):
        for thread in threads:
            thread.start()
        time.sleep(SECONDS / 4)
        stop_tracker(cluster.trackers[0])
        for thread in threads:
            thread.join(SECONDS + 60)
    try:
        failures = [f for w in workers for f in w.failures]
        ops = sum(w.ops for w in workers)
        failovers = [
            r.getMessage()
            for r in caplog.records
            if r.name == "django_mogilefs.tracker" and r.levelno == logging.WARNING
        ]
        resolved = [
            r.getMessage() for r in caplog.records if "resent after a lost" in r.getMessage()
        ]
        print(
            f"\nload: {ops} operations in {SECONDS:.0f} s by {THREADS} threads, "
            f"{len(failures)} failed, {len(failovers)} failovers, "
            f"{len(resolved)} lost answers resolved"
        )
        assert failures == [], failures[:5]
        assert failovers, "the stopped tracker was never failed over from"
        assert all(cluster.trackers[0] in line for line in failovers), failovers
        stored = {key: body for w in workers for key, body in w.keys.items()}
        for key, body in stored.items():
            with client.open(key) as stream:
                assert stream.read() == body, key
        assert set(client.list_keys(prefix)) == set(stored), "orphan or missing keys"
    finally:
        for key in client.list_keys(prefix):
            client.delete(key)
        client.close()
        if cluster.fake:
            cluster.replace_tracker(0)
