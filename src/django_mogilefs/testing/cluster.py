"""A whole test cluster: three storage nodes on 127.0.0.1..3 plus the fake tracker.

The nodes are real Perlbal web servers where Debian's ``perlbal`` is installed, else
:class:`~.pynode.PythonStorageNode` (``nodes="auto"``, the default); ``nodes="perlbal"``
or ``"python"`` insist on one kind, and so does the environment variable
``MOGILEFS_TESTING_NODES`` for :func:`mogilefs_cluster` and the pytest fixture.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django_mogilefs.cluster import ClusterAdmin, DeviceInfo
from django_mogilefs.exceptions import MogileFSError

from .faketracker.client import Reply, TrackerClient
from .faketracker.server import FakeTracker
from .procgroup import ProcessGroup
from .pynode import PythonStorageNode
from .storagenode import StorageNode, free_port, node_devids, start_nodes

# name -> mindevcount; "avatar" keeps an MD5 checksum (HASHTYPES), as in a typical site.
CLASSES: Mapping[str, int] = {"avatar": 3, "thumb": 1}
HASHTYPES: Mapping[str, str] = {"avatar": "MD5"}
NODES_ENV = "MOGILEFS_TESTING_NODES"

NodeKind = Literal["auto", "perlbal", "python"]
Node = StorageNode | PythonStorageNode


class ClusterError(RuntimeError):
    """The cluster could not be started, or a real one lacks what the tests need."""


@dataclass
class MogileCluster:
    """A running cluster: what :func:`mogilefs_cluster` and the fixture yield.

    ``trackers`` (``"host:port"`` strings, for ``MogileFSStorage(trackers=...)``) and
    ``domain`` are always set; ``tracker`` (the first of ``fakes``, the fake trackers,
    which share one database), ``nodes`` and the node controls exist only when the
    cluster is a fake one started here.
    """

    trackers: list[str]
    domain: str
    fakes: list[FakeTracker] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    group: ProcessGroup | None = None
    root: Path | None = None  # where a fake cluster's nodes keep their files
    node_kind: Literal["perlbal", "python"] = "perlbal"

    @property
    def tracker(self) -> FakeTracker | None:
        return self.fakes[0] if self.fakes else None

    @property
    def fake(self) -> bool:
        return bool(self.fakes)

    def client(self, timeout: float = 10.0) -> TrackerClient:
        return TrackerClient(self.trackers[0], timeout)

    def admin(self, tracker: str | None = None) -> ClusterAdmin:
        """The package's admin client on one tracker (the first by default); close it."""
        return ClusterAdmin([tracker or self.trackers[0]])

    def call(self, command: str, **args: Any) -> Reply:
        """One request on a fresh connection."""
        with self.client() as client:
            return client.call(command, **args)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def stop_node(self, name: str, *, wait: bool = True) -> None:
        """Stop a storage node; with ``wait``, until the tracker sees it unreachable."""
        node = self.node(name)
        node.stop()
        if wait:
            self.wait_devices(
                lambda d: d.devid not in node.devids or d.observed_state == "unreachable"
            )

    def start_node(self, name: str, *, wait: bool = True) -> None:
        """Restart a storage node; with ``wait``, until its devices are writeable again."""
        self.node(name).start()
        if wait:
            self.wait_devices(lambda d: d.ready)

    def wait_devices(
        self, ready: Callable[[DeviceInfo], bool], timeout: float = 20.0
    ) -> list[DeviceInfo]:
        """Poll ``get_devices`` on every tracker until ``ready(device)`` holds for every
        alive device on each: each tracker has its own monitor, so one may see a node
        come or go seconds after the other."""
        deadline = time.monotonic() + timeout
        pending = list(self.trackers)
        devices: list[DeviceInfo] = []
        while pending:
            devices = self.devices(pending[0])
            alive = [d for d in devices if d.status == "alive"]
            if alive and all(ready(d) for d in alive):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"devices not ready on {pending[0]} after {timeout} s: {devices}"
                )
            time.sleep(0.1)
        return devices

    def devices(self, tracker: str | None = None) -> list[DeviceInfo]:
        """``get_devices`` of one tracker (the first by default)."""
        with contextlib.closing(self.admin(tracker)) as admin:
            return admin.get_devices()

    def add_node(self, devices: int = 2) -> Node:
        """Start one more storage node (on the next 127.0.0.N, with the next free device
        ids), register it alive with its devices, and wait until every tracker sees
        them writeable: a new machine joining the cluster."""
        assert self.root is not None and self.nodes, "add_node needs a fake cluster"
        index = len(self.nodes) + 1
        top = max(d for node in self.nodes for d in node.devids)
        devids = list(range(top + 1, top + 1 + devices))
        port, name, ip = self.nodes[0].port, f"mog{index}", f"127.0.0.{index}"
        node: Node
        if self.node_kind == "perlbal":
            node = StorageNode(name, ip, port, devids, self.root, group=self.group)
        else:
            node = PythonStorageNode(name, ip, port, devids, self.root)
        node.start()
        self.nodes.append(node)
        with contextlib.closing(self.admin()) as admin, _bootstrap_errors(self):
            _register(admin, node, port)
        self.wait_devices(lambda d: d.ready)
        return node

    def replace_tracker(self, index: int) -> FakeTracker:
        """Start a fresh fake tracker on the database and address of a stopped one."""
        old = self.fakes[index]
        old.shutdown()
        host, port = old.address
        self.fakes[index] = FakeTracker(host, port, old.config, store=old.store).start()
        # Its monitor starts from nothing, as a restarted mogilefsd's does.
        self.wait_devices(lambda d: d.ready)
        return self.fakes[index]

    def __enter__(self) -> MogileCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for tracker in self.fakes:
            tracker.shutdown()
        for node in self.nodes:
            node.stop()
        if self.group is not None:
            self.group.stop_all()


def start_fake_cluster(
    root: Path,
    *,
    domain: str = "testdom",
    classes: Mapping[str, int] = CLASSES,
    hashtypes: Mapping[str, str] = HASHTYPES,
    nodes: NodeKind = "auto",
    port: int | None = None,
    bootstrap: bool = True,
    trackers: int = 1,
    **tracker_options: Any,
) -> MogileCluster:
    """Start mog1..3 (on 127.0.0.1..3, devices i and i+3 on node i, files under ``root``) and
    ``trackers`` fake trackers sharing one database.

    With ``bootstrap``: create ``domain`` with ``classes`` (name -> mindevcount; the
    checksum of ``hashtypes``), the hosts (alive) and devices, and wait until every
    device is writeable with ``mb_total`` known.
    """
    kind = _node_kind(nodes)
    group = ProcessGroup()
    cluster = MogileCluster([], domain, group=group, root=root, node_kind=kind)
    try:
        node_port = port or free_port()
        if kind == "perlbal":
            cluster.nodes = list(start_nodes(root, node_port, group=group))
        else:
            cluster.nodes = [
                PythonStorageNode(f"mog{i}", f"127.0.0.{i}", node_port, node_devids(i), root)
                for i in range(1, 4)
            ]
            for node in cluster.nodes:
                node.start()
        first = FakeTracker(**tracker_options).start()
        cluster.fakes = [first] + [
            FakeTracker(store=first.store, **tracker_options).start() for _ in range(trackers - 1)
        ]
        cluster.trackers = [t.hostport for t in cluster.fakes]
        if bootstrap:
            _bootstrap(cluster, node_port, classes, hashtypes)
    except BaseException:
        cluster.close()
        raise
    return cluster


@contextlib.contextmanager
def mogilefs_cluster(
    *,
    domain: str = "testdom",
    classes: Mapping[str, int] = CLASSES,
    hashtypes: Mapping[str, str] = HASHTYPES,
    nodes: NodeKind | None = None,
    root: Path | None = None,
    **tracker_options: Any,
) -> Iterator[MogileCluster]:
    """A fresh fake cluster for the ``with`` block (unittest, Django ``TestCase``).

    ``nodes`` defaults to ``$MOGILEFS_TESTING_NODES``, else ``"auto"``; the nodes' files
    go to ``root``, else to a temporary directory removed at the end. The monitor runs
    every half second, so the devices are writeable within about a second.
    """
    options = {"monitor_interval": 0.5, "test_write_interval": 1.0, **tracker_options}
    with contextlib.ExitStack() as stack:
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mogilefs-")))
        cluster = start_fake_cluster(
            root,
            domain=domain,
            classes=classes,
            hashtypes=hashtypes,
            nodes=nodes or os.environ.get(NODES_ENV) or "auto",  # type: ignore[arg-type]
            **options,
        )
        stack.callback(cluster.close)
        yield cluster


def _node_kind(nodes: str) -> Literal["perlbal", "python"]:
    if nodes not in ("auto", "perlbal", "python"):
        raise ClusterError(
            f"storage nodes: expected 'auto', 'perlbal' or 'python' ({NODES_ENV}), got {nodes!r}"
        )
    if nodes == "auto":
        return "perlbal" if shutil.which("perlbal") else "python"
    return nodes  # type: ignore[return-value]


def _bootstrap(
    cluster: MogileCluster, port: int, classes: Mapping[str, int], hashtypes: Mapping[str, str]
) -> None:
    with contextlib.closing(cluster.admin()) as admin, _bootstrap_errors(cluster):
        admin.create_domain(cluster.domain)
        for name, count in classes.items():
            admin.create_class(cluster.domain, name, count, hashtype=hashtypes.get(name))
        for node in cluster.nodes:
            _register(admin, node, port)
    cluster.wait_devices(lambda d: d.ready)


def _register(admin: ClusterAdmin, node: Node, port: int) -> None:
    """A node's host (alive) and its devices."""
    admin.create_host(node.name, node.ip, port)
    for devid in node.devids:
        admin.create_device(devid, node.name)


@contextlib.contextmanager
def _bootstrap_errors(cluster: MogileCluster) -> Iterator[None]:
    try:
        yield
    except MogileFSError as exc:
        raise ClusterError(f"setting up the cluster on {cluster.trackers[0]}: {exc}") from exc


def check_real_cluster(cluster: MogileCluster, classes: Mapping[str, int] = CLASSES) -> None:
    """A cluster named by MOGILEFS_TRACKERS must already have the domain and classes."""
    with contextlib.closing(cluster.admin()) as admin:
        found = admin.get_domains().get(cluster.domain)
    if found is None:
        raise ClusterError(f"domain {cluster.domain!r} not found on {cluster.trackers}")
    missing = set(classes) - set(found)
    if missing:
        raise ClusterError(f"domain {cluster.domain!r} lacks classes {sorted(missing)}")
