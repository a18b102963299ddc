"""Start child processes and make sure every one of them is stopped again."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import weakref
from collections.abc import Sequence
from pathlib import Path

_GROUPS: weakref.WeakSet[ProcessGroup] = weakref.WeakSet()


class ProcessGroup:
    """Processes started through :meth:`spawn`; :meth:`stop_all` (or leaving the ``with``
    block, or interpreter exit) stops them all.

    Each child runs in its own session, so stopping signals its whole process group. With
    ``die_with_parent`` (the default) the child is also started under
    ``setpriv --pdeathsig SIGTERM``, so it goes away even if this Python process is killed.
    Linux delivers that signal when the *thread* that started the child exits, so start
    long-lived children from the main thread.
    """

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        _GROUPS.add(self)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        die_with_parent: bool = True,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``cwd`` with stdout and stderr appended to ``log_path``."""
        command = list(argv)
        setpriv = shutil.which("setpriv")
        if die_with_parent and setpriv:
            command = [setpriv, "--pdeathsig", "SIGTERM", "--", *command]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return list(self._procs)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        """SIGTERM the child's process group, then SIGKILL after ``timeout`` s."""
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self, timeout: float = 5.0) -> None:
        """Stop every child, newest first."""
        for proc in reversed(self._procs):
            self.stop(proc, timeout)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


@atexit.register
def _stop_everything() -> None:
    for group in list(_GROUPS):
        group.stop_all(timeout=2.0)
