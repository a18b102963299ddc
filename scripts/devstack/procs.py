"""Named services on top of ``django_mogilefs.testing.ProcessGroup``, with a pid record on disk.

``ProcessGroup`` starts each child in its own session under ``setpriv --pdeathsig``
(so the kernel stops it if the supervisor dies, even on SIGKILL) and stops whole
process groups. This module adds names, one log file per service, and a JSON record
of the pids with their start times, so ``devstack down`` from another shell can stop
whatever a crashed supervisor left behind without ever signalling a recycled pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from django_mogilefs.testing import ProcessGroup


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    """Whether ``pid`` runs and is still the process that started at ``started``."""
    now = start_time(pid)
    return now is not None and (started is None or now == started)


@dataclass
class Service:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Starts named services, records them in ``record``, stops them newest first."""

    def __init__(self, record: Path, log_dir: Path) -> None:
        self.record = record
        self.log_dir = log_dir
        self.group = ProcessGroup()
        self.services: dict[str, Service] = {}
        self.labels: dict[int, str] = {}  # pid -> name, for children started by others

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
    ) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        popen = self.group.spawn(
            argv, cwd=cwd, log_path=log, env=dict(env) if env is not None else None
        )
        service = Service(name, popen, log)
        self.services[name] = service
        self.write_record()
        return service

    def label(self, popen: subprocess.Popen[bytes], name: str) -> None:
        """Name a child that someone else started through :attr:`group` (for the record)."""
        self.labels[popen.pid] = name
        self.write_record()

    def stop(self, name: str, timeout: float = 10.0) -> None:
        service = self.services.pop(name, None)
        if service is not None:
            self.group.stop(service.popen, timeout)
            self.write_record()

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every child of the group, newest first (the reverse of the start order)."""
        self.group.stop_all(timeout)
        self.services.clear()
        with contextlib.suppress(FileNotFoundError):
            self.record.unlink()

    def exited(self) -> Service | None:
        """The first service that has exited on its own, if any."""
        return next((s for s in self.services.values() if not s.running()), None)

    def write_record(self) -> None:
        """Record every child of the group: the named services and the others (storage
        nodes started by django_mogilefs.testing), so ``reap_record`` can find them all."""
        names = {**self.labels, **{s.pid: name for name, s in self.services.items()}}
        data = {
            names.get(p.pid, f"child-{p.pid}"): {
                "pid": p.pid,
                "started": start_time(p.pid),
                "argv": list(map(str, p.args)),
            }
            for p in self.group.processes
        }
        self.record.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.record.with_name(self.record.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.record)


def read_record(record: Path) -> dict[str, dict]:
    try:
        return json.loads(record.read_text())
    except (OSError, ValueError):
        return {}


def running_in_record(record: Path) -> list[str]:
    return [
        name
        for name, entry in read_record(record).items()
        if alive(int(entry["pid"]), entry.get("started"))
    ]


def reap_record(record: Path, timeout: float = 10.0) -> list[str]:
    """Stop every process group named in ``record`` that still runs; their names."""
    stopped = []
    for name, entry in reversed(list(read_record(record).items())):
        pid, started = int(entry["pid"]), entry.get("started")
        if not alive(pid, started):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        stopped.append(name)
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
    return stopped
