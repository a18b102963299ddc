"""Taking one storage node of the test cluster down and bringing it back.

The fake cluster's nodes are the suite's own processes: it stops ``mog3``. A real
cluster's are not: the suite runs the same commands the e2e suite takes,
``E2E_STORAGE_NODE_STOP`` and ``E2E_STORAGE_NODE_START`` (shell commands that stop and
start one storage node, for example ``docker compose stop mogstored2``), and learns which
devices went away from the tracker. ``MOGILEFS_MONITOR_DEADLINE`` (60 s) is how long the
tracker may take to notice (a real one re-tests devices every 15 s or so).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django_mogilefs.testing.cluster import MogileCluster

STOP, START = "E2E_STORAGE_NODE_STOP", "E2E_STORAGE_NODE_START"
FAKE_NODE = "mog3"
HOOK_TIMEOUT = 120.0


@contextlib.contextmanager
def frozen(cluster: MogileCluster, name: str) -> Iterator[None]:
    """Storage node ``name`` of the fake cluster stopped with SIGSTOP, resumed after.

    Its Perlbal's socket still listens: connections are made, nothing answers, as with
    a container whose address no longer answers (no refused connection in between).
    """
    conf = f"--config={cluster.node(name).workdir / 'perlbal.conf'}"
    perlbal = next(p for p in cluster.group.processes if conf in p.args)
    os.kill(perlbal.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(perlbal.pid, signal.SIGCONT)


class NodeControlUnavailable(Exception):
    """Nothing says how to stop a node of this cluster (the message says what to set)."""


@dataclass
class NodeControl:
    cluster: MogileCluster
    hooks: tuple[str, str] | None = None
    deadline: float = 60.0

    @classmethod
    def for_cluster(
        cls, cluster: MogileCluster, environ: Mapping[str, str] = os.environ
    ) -> NodeControl:
        """The fake cluster's own controls, else the commands named by the environment."""
        deadline = float(environ.get("MOGILEFS_MONITOR_DEADLINE", "60"))
        if cluster.fake:
            return cls(cluster, deadline=deadline)
        stop, start = environ.get(STOP, "").strip(), environ.get(START, "").strip()
        if not (stop and start):
            raise NodeControlUnavailable(
                f"stopping a storage node of a real cluster needs {STOP} and {START}: "
                "shell commands that stop and start one of its storage nodes"
            )
        return cls(cluster, (stop, start), deadline)

    def stop(self) -> set[int]:
        """Stop one node and wait until the tracker sees it; the ids of its devices."""
        assert not self.not_writeable(), "a device is not writeable before the node stops"
        if self.hooks is None:
            node = self.cluster.node(FAKE_NODE)
            self.cluster.stop_node(node.name)
            return set(node.devids)
        subprocess.run(self.hooks[0], shell=True, check=True, timeout=HOOK_TIMEOUT)
        end = time.monotonic() + self.deadline
        while not (down := self.not_writeable()):
            if time.monotonic() > end:
                raise AssertionError(f"{self.deadline:g}s after {STOP}, every device is writeable")
            time.sleep(0.25)
        return down

    def start(self) -> None:
        """Start the node again and wait until every alive device is writeable."""
        if self.hooks is None:
            self.cluster.start_node(FAKE_NODE)
            return
        subprocess.run(self.hooks[1], shell=True, check=True, timeout=HOOK_TIMEOUT)
        self.cluster.wait_devices(
            lambda d: d["observed_state"] == "writeable", timeout=self.deadline
        )

    def not_writeable(self) -> set[int]:
        """The alive devices the tracker does not see writeable."""
        return {
            int(d["devid"])
            for d in self.cluster.devices()
            if d["status"] == "alive" and d.get("observed_state") != "writeable"
        }
