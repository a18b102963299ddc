"""The unit tests' stub cluster, one per test (tests/unit/stubs.py has the stand-ins)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .stubs import Cluster


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A stub tracker in front of a stub node, of the class the test module names in
    ``STUB_CLUSTER`` (``stubs.Cluster`` unless it names one), closed after the test."""
    stub = getattr(request.module, "STUB_CLUSTER", Cluster)()
    yield stub
    stub.close()
