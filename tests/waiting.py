"""Waiting for what a cluster, a process or the stack does in its own time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T], deadline: float, interval: float = 0.25) -> T:
    """Poll ``check`` until it returns something true (returned); fail after ``deadline``."""
    end = time.monotonic() + deadline
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > end:
            pytest.fail(f"{what}: still not the case after {deadline:g}s (last: {last!r})")
        time.sleep(interval)
