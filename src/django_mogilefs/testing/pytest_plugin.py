"""The pytest plugin (entry point ``pytest11``): a fake MogileFS cluster as a fixture.

    def test_roundtrip(mogilefs_cluster):
        storage = MogileFSStorage(trackers=mogilefs_cluster.trackers,
                                  domain=mogilefs_cluster.domain)

One cluster per test session (three storage nodes and a fake 2.73 tracker, see
:mod:`django_mogilefs.testing.cluster`); files stay between tests, so give each test
its own names. Override the session fixtures ``mogilefs_domain`` or
``mogilefs_classes`` (name -> copies) in a ``conftest.py`` to change what is created.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from .cluster import CLASSES, MogileCluster
from .cluster import mogilefs_cluster as start_cluster


@pytest.fixture(scope="session")
def mogilefs_domain() -> str:
    """The domain the cluster is created with."""
    return "testdom"


@pytest.fixture(scope="session")
def mogilefs_classes() -> Mapping[str, int]:
    """The domain's classes, name -> mindevcount (copies)."""
    return dict(CLASSES)


@pytest.fixture(scope="session")
def mogilefs_cluster(
    mogilefs_domain: str,
    mogilefs_classes: Mapping[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MogileCluster]:
    """A running fake cluster with ``trackers`` (``"host:port"``) and ``domain``."""
    with start_cluster(
        domain=mogilefs_domain,
        classes=mogilefs_classes,
        root=tmp_path_factory.mktemp("mogilefs"),
    ) as cluster:
        yield cluster
