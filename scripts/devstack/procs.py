"""Child processes that never outlive the stack.

Each service runs in its own session (so Ctrl-C in the terminal reaches only the
supervisor, which then stops the services in order) with ``PR_SET_PDEATHSIG``, so
the kernel sends it SIGTERM if the supervisor dies without cleaning up (even on
SIGKILL). Its pid and start time go to a JSON record, so ``devstack down`` from
another shell can stop what a crashed supervisor left behind without ever
signalling a recycled pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs and, when ``started`` is given, is still the same process."""
    now = start_time(pid)
    if now is None:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    if state == "Z":
        return False
    return started is None or now == started


def kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Service:
    """One running child: its own process group, output to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: int | None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        """Signal the whole group, then SIGKILL it if it is still there after ``timeout``."""
        if self.running():
            kill_group(self.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        # Stragglers of the group (workers whose master died first).
        kill_group(self.pid, signal.SIGKILL)

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Starts services, records them in ``record``, stops them in reverse order."""

    def __init__(self, record: Path, log_dir: Path) -> None:
        self.record = record
        self.log_dir = log_dir
        self.services: dict[str, Service] = {}

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Service:
        if name in self.services and self.services[name].running():
            raise RuntimeError(f"{name} is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        service = Service(name, popen, log, start_time(popen.pid))
        self.services[name] = service
        self._write_record()
        return service

    def stop(self, name: str, timeout: float = 10.0) -> None:
        service = self.services.pop(name, None)
        if service is not None:
            service.stop(timeout)
            self._write_record()

    def stop_all(self, timeout: float = 10.0) -> None:
        for name in reversed(list(self.services)):
            self.stop(name, timeout)
        with contextlib.suppress(FileNotFoundError):
            self.record.unlink()

    def failed(self) -> Service | None:
        """The first service that has exited on its own, if any."""
        return next((s for s in self.services.values() if not s.running()), None)

    def _write_record(self) -> None:
        data = {
            name: {"pid": s.pid, "started": s.started, "argv": s.popen.args}
            for name, s in self.services.items()
        }
        self.record.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(self.record)


def read_record(record: Path) -> dict[str, dict]:
    try:
        return json.loads(record.read_text())
    except (OSError, ValueError):
        return {}


def reap_record(record: Path, timeout: float = 10.0) -> list[str]:
    """Stop every still-running process group named in ``record``; the names stopped."""
    entries = read_record(record)
    stopped = []
    for name, entry in reversed(list(entries.items())):
        pid, started = int(entry["pid"]), entry.get("started")
        if not alive(pid, started):
            continue
        kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.1)
        kill_group(pid, signal.SIGKILL)
        stopped.append(name)
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
    return stopped
