"""Shared fixtures: a MogileFS cluster for the integration tests.

``mogile_cluster`` uses the real cluster named by ``MOGILEFS_TRACKERS`` (comma-separated
``host:port``; ``MOGILEFS_DOMAIN`` names a domain that already has the classes ``avatar``
and ``thumb``) and starts nothing. Otherwise it starts three real Perlbal storage nodes on
127.0.0.1..3 (on a free port, so a dev stack on 7500 does not matter) and the fake tracker
(``django_mogilefs.testing``), bootstraps domain ``testdom``, and stops it all at the end.

``make_fake_cluster(**options)`` starts such a fake cluster for one test module alone
(stopped when the module ends), for the tests that stop its trackers or nodes:
``options`` are what differs (``trackers=2``, intervals, ``bootstrap=False``...).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django_mogilefs.testing.cluster import (
    ClusterError,
    MogileCluster,
    check_real_cluster,
    start_fake_cluster,
)
from django_mogilefs.testing.faketracker.client import TrackerClient

FAKE_DOMAIN = "testdom"
# Real Perlbal storage nodes; a monitor that finds them writeable within about a second.
FAKE_CLUSTER: dict[str, Any] = {
    "nodes": "perlbal",
    "domain": FAKE_DOMAIN,
    "monitor_interval": 0.5,
    "test_write_interval": 1.0,
}


@pytest.fixture(scope="session")
def mogile_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MogileCluster]:
    trackers = os.environ.get("MOGILEFS_TRACKERS", "").strip()
    if trackers:
        domain = os.environ.get("MOGILEFS_DOMAIN", "").strip()
        if not domain:
            pytest.fail("MOGILEFS_TRACKERS is set, so MOGILEFS_DOMAIN is required", pytrace=False)
        cluster = MogileCluster([t.strip() for t in trackers.split(",") if t.strip()], domain)
        try:
            check_real_cluster(cluster)
        except (ClusterError, OSError) as exc:
            pytest.fail(f"MOGILEFS_TRACKERS={trackers}: {exc}", pytrace=False)
        yield cluster
        return
    with start_fake_cluster(tmp_path_factory.mktemp("mogile-cluster"), **FAKE_CLUSTER) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def make_fake_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., MogileCluster]]:
    """Start a fake cluster like ``mogile_cluster``'s but for this module alone, with
    ``options`` of ``start_fake_cluster`` over its defaults; all stop when the module ends."""
    with contextlib.ExitStack() as started:

        def make(**options: Any) -> MogileCluster:
            root = tmp_path_factory.mktemp("fake-cluster")
            return started.enter_context(start_fake_cluster(root, **{**FAKE_CLUSTER, **options}))

        yield make


@pytest.fixture
def tracker_client(mogile_cluster: MogileCluster) -> Iterator[TrackerClient]:
    """A plain-socket connection to the cluster's first tracker."""
    with mogile_cluster.client() as client:
        yield client
