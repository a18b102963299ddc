"""Two fake tracker processes on one SQLite database, in front of real storage nodes.

As two mogilefsd on one database: what is written through one is read through the
other, and everything survives stopping and starting both (``--database``, or
``FAKETRACKER_DATABASE`` from the environment).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.testing import ProcessGroup, StorageNode, free_port, start_nodes
from django_mogilefs.testing.faketracker.client import TrackerClient
from ownenv import own_environ

pytestmark = pytest.mark.integration
FAKETRACKER = "django_mogilefs.testing.faketracker"


class TrackerProcess:
    """The fake tracker as a process (``python -m``) on a fixed port, database by flag or env."""

    def __init__(self, database: Path, *, by_env: bool) -> None:
        self.port = free_port(("127.0.0.1",))
        self.hostport = f"127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", FAKETRACKER, "--listen", self.hostport]
        self.args += ["--monitor-interval", "0.5", "--test-write-interval", "1"]
        self.env = own_environ()
        if by_env:
            self.env["FAKETRACKER_DATABASE"] = str(database)
        else:
            self.args += ["--database", str(database)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TrackerProcess:
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with TrackerClient(self.hostport, timeout=5) as client:
                    client.request("noop")
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fake tracker did not start: {self.stop()}") from None
                time.sleep(0.1)

    def stop(self) -> str:
        """SIGTERM, wait, and return what it wrote to stderr."""
        assert self.proc is not None
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=15)
        return err.decode(errors="replace")


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[StorageNode]]:
    group = ProcessGroup()
    try:
        yield start_nodes(tmp_path / "nodes", free_port(), group=group)
    finally:
        group.stop_all()


def bootstrap(admin: ClusterAdmin, nodes: list[StorageNode], domain: str) -> None:
    admin.create_domain(domain)
    admin.create_class(domain, "avatar", 3)
    for node in nodes:
        admin.create_host(node.name, node.ip, node.port)
        for devid in node.devids:
            admin.create_device(devid, node.name)


def wait_writeable(admin: ClusterAdmin, count: int) -> None:
    deadline = time.monotonic() + 20
    while sum(d.observed_state == "writeable" for d in admin.get_devices()) < count:
        assert time.monotonic() < deadline, admin.get_devices()
        time.sleep(0.2)


def test_two_processes_share_one_database_across_restarts(
    tmp_path: Path, nodes: list[StorageNode]
) -> None:
    database = tmp_path / "tracker.sqlite3"
    one = TrackerProcess(database, by_env=False).start()
    two = TrackerProcess(database, by_env=True).start()
    domain, key, gone = "shared", f"k/{uuid.uuid4().hex}", f"k/{uuid.uuid4().hex}"
    body = os.urandom(3000)
    try:
        admin_one, admin_two = ClusterAdmin([one.hostport]), ClusterAdmin([two.hostport])
        bootstrap(admin_one, nodes, domain)
        assert domain in admin_two.get_domains()
        wait_writeable(admin_two, 3)
        admin_one.close()
        admin_two.close()
        via_one = MogileFSClient([one.hostport], domain)
        via_two = MogileFSClient([two.hostport], domain)
        via_one.store(key, body, cls="avatar")
        via_two.store(gone, b"short-lived", cls="avatar")
        with via_two.open(key) as stream:
            assert stream.read() == body
        via_one.delete(gone)
        assert not via_two.exists(gone)
        deadline = time.monotonic() + 20
        while via_two.file_info(key, devices=True).devcount < 3:
            assert time.monotonic() < deadline, "not replicated to 3 devices"
            time.sleep(0.2)
        hosts = {devid % 3 for devid in via_one.file_info(key, devices=True).devids}
        assert hosts == {0, 1, 2}, "one copy on each host (node i has devices i, i+3)"
        via_one.close()
        via_two.close()
    finally:
        one.stop()
        two.stop()
    # Both stopped: everything is only in the database now.
    one.start()
    two.start()
    try:
        via_two = MogileFSClient([two.hostport], domain)
        assert list(via_two.list_keys("k/")) == [key]
        with via_two.open(key) as stream:
            assert stream.read() == body
        via_one = MogileFSClient([one.hostport], domain)
        assert via_one.file_info(key).length == len(body)
        via_one.close()
        via_two.close()
    finally:
        one.stop()
        two.stop()


def test_a_bad_database_stops_the_tracker_with_a_clear_error(tmp_path: Path) -> None:
    database = tmp_path / "tracker.sqlite3"
    database.write_bytes(b"garbage")
    proc = subprocess.run(
        [sys.executable, "-m", FAKETRACKER, "--listen", "127.0.0.1:0"],
        env=own_environ(FAKETRACKER_DATABASE=str(database)),
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert b"FAKETRACKER_DATABASE" in proc.stderr
    assert b"not an SQLite database" in proc.stderr
    assert database.read_bytes() == b"garbage"
