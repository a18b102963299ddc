"""A whole test cluster: three real Perlbal storage nodes plus the fake tracker.

Needs ``scripts/`` on ``sys.path`` (for ``nativestack``), as pytest's ``pythonpath`` has it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nativestack import ProcessGroup, StorageNode, free_port, start_nodes

from .client import TrackerClient
from .protocol import Reply
from .server import FakeTracker

CLASSES = {"avatar": 3, "thumb": 1}
HASHTYPES = {"avatar": "MD5"}  # as in mogile/cluster.toml


class ClusterError(RuntimeError):
    pass


@dataclass
class MogileCluster:
    """What the ``mogile_cluster`` fixture yields.

    ``trackers`` and ``domain`` are always set; ``tracker`` (the first of ``fakes``, the
    fake trackers, which share one state), ``nodes`` and the node controls exist only
    when the cluster is the fake one started by the tests.
    """

    trackers: list[str]
    domain: str
    fakes: list[FakeTracker] = field(default_factory=list)
    nodes: list[StorageNode] = field(default_factory=list)
    group: ProcessGroup | None = None

    @property
    def tracker(self) -> FakeTracker | None:
        return self.fakes[0] if self.fakes else None

    @property
    def fake(self) -> bool:
        return bool(self.fakes)

    def client(self, timeout: float = 10.0) -> TrackerClient:
        return TrackerClient(self.trackers[0], timeout)

    def call(self, command: str, **args: Any) -> Reply:
        """One request on a fresh connection."""
        with self.client() as client:
            return client.call(command, **args)

    def node(self, name: str) -> StorageNode:
        return next(n for n in self.nodes if n.name == name)

    def stop_node(self, name: str, *, wait: bool = True) -> None:
        """Stop a storage node; with ``wait``, until the tracker sees it unreachable."""
        node = self.node(name)
        node.stop()
        if wait:
            self.wait_devices(
                lambda d: (
                    d["devid"] not in map(str, node.devids) or d["observed_state"] == "unreachable"
                )
            )

    def start_node(self, name: str, *, wait: bool = True) -> None:
        """Restart a storage node; with ``wait``, until its devices are writeable again."""
        self.node(name).start()
        if wait:
            self.wait_devices(lambda d: d["observed_state"] == "writeable" and d["mb_total"] != "")

    def wait_devices(self, ready: Any, timeout: float = 20.0) -> list[dict[str, str]]:
        """Poll ``get_devices`` until ``ready(device_fields)`` holds for every alive device."""
        deadline = time.monotonic() + timeout
        while True:
            devices = self.devices()
            alive = [d for d in devices if d["status"] == "alive"]
            if alive and all(ready(d) for d in alive):
                return devices
            if time.monotonic() > deadline:
                raise ClusterError(f"devices not ready after {timeout} s: {devices}")
            time.sleep(0.1)

    def devices(self) -> list[dict[str, str]]:
        reply = self.call("get_devices")
        count = int(reply.args.get("devices", 0))
        return [
            {k[len(f"dev{n}_") :]: v for k, v in reply.args.items() if k.startswith(f"dev{n}_")}
            for n in range(1, count + 1)
        ]

    def replace_tracker(self, index: int) -> FakeTracker:
        """Start a fresh fake tracker on the state and address of a stopped one."""
        old = self.fakes[index]
        old.shutdown()
        host, port = old.address
        self.fakes[index] = FakeTracker(host, port, old.config, state=old.state).start()
        return self.fakes[index]

    def close(self) -> None:
        for tracker in self.fakes:
            tracker.shutdown()
        if self.group is not None:
            self.group.stop_all()


def start_fake_cluster(
    root: Path,
    *,
    domain: str = "testdom",
    port: int | None = None,
    bootstrap: bool = True,
    trackers: int = 1,
    **tracker_options: Any,
) -> MogileCluster:
    """Start mog1..3 (Perlbal on 127.0.0.1..3, device i on node i) and ``trackers`` fake
    trackers sharing one state.

    With ``bootstrap``: create ``domain`` with classes avatar (3, MD5) and thumb (1), the hosts
    (alive) and devices, and wait until every device is writeable with ``mb_total`` known.
    """
    group = ProcessGroup()
    cluster = MogileCluster([], domain, group=group)
    try:
        node_port = port or free_port()
        cluster.nodes = start_nodes(root, node_port, group=group)
        first = FakeTracker(**tracker_options).start()
        cluster.fakes = [first] + [
            FakeTracker(state=first.state, **tracker_options).start() for _ in range(trackers - 1)
        ]
        cluster.trackers = [t.hostport for t in cluster.fakes]
        if bootstrap:
            _bootstrap(cluster, node_port)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _bootstrap(cluster: MogileCluster, port: int) -> None:
    steps: list[tuple[str, dict[str, Any]]] = [("create_domain", {"domain": cluster.domain})]
    steps += [
        (
            "create_class",
            {
                "domain": cluster.domain,
                "class": name,
                "mindevcount": count,
                "hashtype": HASHTYPES.get(name),
            },
        )
        for name, count in CLASSES.items()
    ]
    for node in cluster.nodes:
        steps.append(
            ("create_host", {"host": node.name, "ip": node.ip, "port": port, "status": "alive"})
        )
        steps += [
            ("create_device", {"hostname": node.name, "devid": devid}) for devid in node.devids
        ]
    with cluster.client() as client:
        for command, args in steps:
            reply = client.call(command, args)
            if not reply.ok:
                raise ClusterError(f"{command} {args}: {reply.raw}")
    cluster.wait_devices(lambda d: d["observed_state"] == "writeable" and d["mb_total"] != "")


def check_real_cluster(cluster: MogileCluster) -> None:
    """A cluster named by MOGILEFS_TRACKERS must already have the domain and classes."""
    reply = cluster.call("get_domains")
    args = reply.args
    for n in range(1, int(args.get("domains", 0)) + 1):
        if args.get(f"domain{n}") == cluster.domain:
            names = {
                args.get(f"domain{n}class{c}name")
                for c in range(1, int(args.get(f"domain{n}classes", 0)) + 1)
            }
            missing = set(CLASSES) - names
            if missing:
                raise ClusterError(f"domain {cluster.domain!r} lacks classes {sorted(missing)}")
            return
    raise ClusterError(f"domain {cluster.domain!r} not found on {cluster.trackers}")
