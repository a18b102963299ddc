"""Taking one storage node of the test cluster down and bringing it back.

The fake cluster's nodes are the suite's own processes: it stops ``mog3``. A real
cluster's are not: the suite runs the same commands the e2e suite takes,
``E2E_STORAGE_NODE_STOP`` and ``E2E_STORAGE_NODE_START`` (shell commands that stop and
start one storage node, for example ``docker compose stop mogstored2``), and learns which
devices went away from the tracker. ``MOGILEFS_MONITOR_DEADLINE`` (60 s) is how long the
tracker may take to notice (a real one re-tests devices every 15 s or so).

A device counts as away when the tracker no longer uses it: reported not writeable
(a node that refuses), or no longer offered by ``create_open`` (a node that is gone:
a real 2.73 tracker then still reports it writeable).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django_mogilefs.cluster import avoided_by_trackers
from django_mogilefs.testing.cluster import MogileCluster
from waiting import wait_until

STOP, START = "E2E_STORAGE_NODE_STOP", "E2E_STORAGE_NODE_START"
# Freeze a node so that it stops answering without refusing (docker pause, kill -STOP).
FREEZE, THAW = "E2E_STORAGE_NODE_FREEZE", "E2E_STORAGE_NODE_THAW"
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
    freeze_hooks: tuple[str, str] | None = None

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
        freeze, thaw = environ.get(FREEZE, "").strip(), environ.get(THAW, "").strip()
        return cls(cluster, (stop, start), deadline, (freeze, thaw) if freeze and thaw else None)

    def check_freezing(self) -> None:
        """Raise NodeControlUnavailable unless :meth:`frozen_node` can work here."""
        if self.hooks is not None and self.freeze_hooks is None:
            raise NodeControlUnavailable(
                f"freezing a storage node of a real cluster needs {FREEZE} and {THAW}, "
                "e.g. docker pause / docker unpause of one storage node's container"
            )

    @contextlib.contextmanager
    def frozen_node(self) -> Iterator[set[int]]:
        """A node that stops answering without refusing, until the tracker avoids it: the
        ids of its devices. The fake cluster's ``mog3`` gets SIGSTOP; a real cluster's
        node, E2E_STORAGE_NODE_FREEZE (then E2E_STORAGE_NODE_THAW)."""
        self.check_freezing()
        assert not self.avoided_by_a_tracker(), "a tracker avoids a device before the node freezes"
        with contextlib.ExitStack() as stack:
            if self.freeze_hooks is None:
                stack.enter_context(frozen(self.cluster, FAKE_NODE))
            else:
                freeze, thaw = self.freeze_hooks
                subprocess.run(freeze, shell=True, check=True, timeout=HOOK_TIMEOUT)
                stack.callback(subprocess.run, thaw, shell=True, check=True, timeout=HOOK_TIMEOUT)
            yield wait_until("the frozen node's devices avoided", self.avoided, self.deadline)
        self._wait_all_used("thawing")

    def stop(self) -> set[int]:
        """Stop one node and wait until the tracker stops using it; its devices' ids."""
        assert not self.avoided_by_a_tracker(), "a tracker avoids a device before the node stops"
        if self.hooks is None:
            node = self.cluster.node(FAKE_NODE)
            self.cluster.stop_node(node.name)
            return set(node.devids)
        subprocess.run(self.hooks[0], shell=True, check=True, timeout=HOOK_TIMEOUT)
        return wait_until(f"after {STOP}, the node's devices avoided", self.avoided, self.deadline)

    def start(self) -> None:
        """Start the node again and wait until the tracker uses every alive device."""
        if self.hooks is None:
            self.cluster.start_node(FAKE_NODE)
            return
        subprocess.run(self.hooks[1], shell=True, check=True, timeout=HOOK_TIMEOUT)
        self._wait_all_used(START)

    def _wait_all_used(self, after: str) -> None:
        wait_until(
            f"after {after}, every device used by every tracker",
            lambda: not self.avoided_by_a_tracker(),
            self.deadline,
        )

    def avoided(self) -> set[int]:
        """The alive devices no tracker uses (each has its own monitor, so one may avoid
        a node seconds before another does): not writeable, or not offered."""
        sets = avoided_by_trackers(self.cluster.trackers, self.cluster.domain, "avatar")
        return set.intersection(*sets.values())

    def avoided_by_a_tracker(self) -> set[int]:
        sets = avoided_by_trackers(self.cluster.trackers, self.cluster.domain, "avatar")
        return set.union(*sets.values())
