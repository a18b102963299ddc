"""One MogileFS storage node: a real Perlbal web server plus a usage writer.

Each node serves ``http://<ip>:<port>/devN/...`` from ``<root>/<name>/docroot`` with
PUT and DELETE enabled, as mogstored's embedded Perlbal does, and keeps
``devN/usage`` fresh. Give every node its own loopback address (127.0.0.1, .2, .3…):
the tracker allows one host per IP.

    group = ProcessGroup()
    node = StorageNode("mog1", "127.0.0.1", 7500, [1], Path("var/storage"), group=group)
    node.start()          # returns once GET /dev1/usage answers 200
    ...
    node.stop()           # or group.stop_all()
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from string import Template

from .procgroup import ProcessGroup
from .usage import write_usage

HERE = Path(__file__).resolve().parent
CONF_TEMPLATE = HERE / "perlbal-storage.conf"
USAGE_SCRIPT = HERE / "usage.py"


class StorageNode:
    """A Perlbal storage node serving the devices ``devids`` on ``ip:port``."""

    def __init__(
        self,
        name: str,
        ip: str,
        port: int,
        devids: Sequence[int],
        root: Path,
        *,
        group: ProcessGroup | None = None,
        usage_interval: float = 5.0,
        perlbal: str = "perlbal",
        die_with_parent: bool = True,
    ) -> None:
        self.name, self.ip, self.port = name, ip, port
        self.devids = list(devids)
        self.workdir = Path(root).resolve() / name
        self.docroot = self.workdir / "docroot"
        self.group = group or ProcessGroup()
        self.usage_interval = usage_interval
        self.perlbal = perlbal
        self.die_with_parent = die_with_parent
        self._procs: list = []

    def __repr__(self) -> str:
        return f"StorageNode({self.name!r}, {self.base_url!r}, devids={self.devids})"

    @property
    def base_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "perlbal.log"

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs)

    def device_dir(self, devid: int) -> Path:
        return self.docroot / f"dev{devid}"

    def prepare(self) -> None:
        """Create the device directories, their usage files and Perlbal's config."""
        for devid in self.devids:
            self.device_dir(devid).mkdir(parents=True, exist_ok=True)
            write_usage(self.docroot, devid)
        self.conf_path.write_text(
            Template(CONF_TEMPLATE.read_text()).substitute(
                listen=f"{self.ip}:{self.port}", docroot=self.docroot
            )
        )

    @property
    def conf_path(self) -> Path:
        return self.workdir / "perlbal.conf"

    def commands(self) -> tuple[list[str], list[str]]:
        """The node's two processes, to run in :attr:`workdir` after :meth:`prepare`:
        Perlbal (with :meth:`perlbal_env` on top of the environment) and the usage writer."""
        perlbal = [self.perlbal, f"--config={self.conf_path}"]
        devids = ",".join(map(str, self.devids))
        usage = [sys.executable, str(USAGE_SCRIPT), "--docroot", str(self.docroot)]
        return perlbal, [*usage, "--devids", devids, "--interval", str(self.usage_interval)]

    @staticmethod
    def perlbal_env() -> dict[str, str]:
        # As mogstored does: Perlbal::XS::HTTPHeaders (Debian's libperlbal-xs-httpheaders-perl)
        # parses the headers when it is installed, unless PERLBAL_XS_HEADERS=0. It halves
        # Perlbal's CPU per small request (make bench).
        return {"PERLBAL_XS_HEADERS": os.environ.get("PERLBAL_XS_HEADERS", "1")}

    def start(self, timeout: float = 15.0) -> StorageNode:
        """Create the device directories, start Perlbal and the usage writer, and wait
        until the node answers HTTP. Raises ``RuntimeError`` (with the log) on failure."""
        if self.running:
            return self
        if not shutil.which(self.perlbal):
            raise RuntimeError(f"{self.perlbal!r} not found; install Debian's perlbal package")
        self.prepare()
        perlbal, usage = self.commands()
        spawn = dict(cwd=self.workdir, die_with_parent=self.die_with_parent)
        self._procs = [
            self.group.spawn(
                perlbal, log_path=self.log_path, env={**os.environ, **self.perlbal_env()}, **spawn
            ),
            self.group.spawn(usage, log_path=self.workdir / "usage.log", **spawn),
        ]
        try:
            self._wait_ready(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        url = f"{self.base_url}/dev{self.devids[0]}/usage" if self.devids else self.base_url
        deadline = time.monotonic() + timeout
        while True:
            dead = [p for p in self._procs if p.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"{self.name}: {dead[0].args} exited with "
                    f"{dead[0].returncode}\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name}: no answer on {url} after {timeout} s\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop Perlbal and the usage writer (files stay on disk; ``start()`` again works)."""
        for proc in self._procs:
            self.group.stop(proc, timeout)
        self._procs = []


def port_is_free(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def free_port(ips: Sequence[str] = ("127.0.0.1", "127.0.0.2", "127.0.0.3")) -> int:
    """A TCP port that is free on every address in ``ips`` (so all nodes can share it)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((ips[0], 0))
            port = sock.getsockname()[1]
        if all(port_is_free(ip, port) for ip in ips):
            return port
    raise RuntimeError(f"no common free port on {', '.join(ips)}")


def node_devids(node: int, count: int = 3, devices: int = 2) -> list[int]:
    """The device ids of node ``node`` (1-based) of ``count``: i, i+count, ... (as
    mogile/cluster.toml numbers them: mogstored1 has devices 1 and 4)."""
    return [node + count * k for k in range(devices)]


def start_nodes(
    root: Path,
    port: int,
    count: int = 3,
    *,
    group: ProcessGroup,
    devices: int = 2,
    **kwargs: object,
) -> list[StorageNode]:
    """Start ``mog1..mogN`` on 127.0.0.1..N, each serving ``devices`` devices."""
    nodes = [
        StorageNode(
            f"mog{i}",
            f"127.0.0.{i}",
            port,
            node_devids(i, count, devices),
            root,
            group=group,
            **kwargs,  # type: ignore[arg-type]
        )
        for i in range(1, count + 1)
    ]
    try:
        for node in nodes:
            node.start()
    except Exception:
        for node in nodes:
            node.stop()
        raise
    return nodes
