"""A State kept in a file, shared by fake trackers in several processes or containers.

Two mogilefsd share one MySQL database; two fake trackers share one state file. The
file is a pickle of the State's tables, replaced atomically (write a temporary file,
then ``os.replace``) on every change. ``STATE.lock`` becomes a :class:`SharedStateLock`:
a thread lock plus an exclusive ``fcntl.flock`` on ``<file>.lock``, held for the whole
critical section, so each one is a transaction. Entering one reloads the tables if
another process has written since (the lock file holds a generation counter, bumped by
every write); leaving one writes them back if they changed. ``flock`` works across
containers that mount the same local volume, as they share one kernel.

The file is trusted input (a volume only the fake trackers write); a file that is not a
state file is refused with :class:`StateFileError`, and the file is left as it is.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
import threading
from pathlib import Path
from typing import Any

from .state import State

_GENERATION = struct.Struct("!Q")
_TABLES = frozenset({"domains", "hosts", "devices", "files", "keys", "tempfiles", "settings"})


class StateFileError(RuntimeError):
    """The state file cannot be read as a fake tracker's state."""


class SharedStateLock:
    """``State.lock`` for a state shared through ``path``; re-entrant like an RLock."""

    def __init__(self, state: State, path: Path) -> None:
        self._state = state
        self._path = path
        self._fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._generation = -1  # never loaded
        self._saved = b""

    def __enter__(self) -> SharedStateLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self._thread_lock.acquire()
        self._depth += 1
        if self._depth > 1:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                self._refresh()
            except BaseException:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                raise
        except BaseException:
            self._depth -= 1
            self._thread_lock.release()
            raise

    def release(self) -> None:
        try:
            if self._depth == 1:
                try:
                    self._save()
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._depth -= 1
            self._thread_lock.release()

    # ------------------------------------------------------------------ file I/O

    def _stored_generation(self) -> int:
        raw = os.pread(self._fd, _GENERATION.size, 0)
        return _GENERATION.unpack(raw)[0] if len(raw) == _GENERATION.size else 0

    def _refresh(self) -> None:
        generation = self._stored_generation()
        if generation == self._generation:
            return
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            if generation:
                raise StateFileError(
                    f"{self._path} is missing but {self._path}.lock says it was written"
                ) from None
            data = b""
        if data:
            tables = _load(self._path, data)
            vars(self._state).update(tables)
            self._saved = pickle.dumps(tables)
        self._generation = generation

    def _save(self) -> None:
        data = pickle.dumps(_tables(self._state))
        if data == self._saved:
            return
        tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self._path)
        self._generation = self._stored_generation() + 1
        os.pwrite(self._fd, _GENERATION.pack(self._generation), 0)
        self._saved = data


def _tables(state: State) -> dict[str, Any]:
    return {name: value for name, value in vars(state).items() if name != "lock"}


def _load(path: Path, data: bytes) -> dict[str, Any]:
    try:
        tables = pickle.loads(data)
    except Exception as exc:
        raise StateFileError(f"{path} is not a fake tracker state file: {exc}") from exc
    if not isinstance(tables, dict) or not tables.keys() >= _TABLES:
        raise StateFileError(f"{path} is not a fake tracker state file (tables missing)")
    return tables


def file_state(path: str | os.PathLike[str]) -> State:
    """A State read from (or, if absent, created in) ``path``, shared with other processes."""
    file = Path(path)
    if not file.parent.is_dir():
        raise StateFileError(f"{file.parent} is not a directory (for the state file {file.name})")
    state = State()
    state.lock = SharedStateLock(state, file)
    with state.lock:  # loads the file, or writes the fresh state
        pass
    return state
