"""An empty fake tracker with three real Perlbal storage nodes, one per test: each test
bootstraps it its own way (or marks a device dead), so no two can share one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.testing.cluster import MogileCluster, start_fake_cluster


@pytest.fixture
def empty_cluster(tmp_path: Path) -> Iterator[MogileCluster]:
    if not shutil.which("perlbal"):
        pytest.skip("needs Debian's perlbal package (the storage nodes)")
    with start_fake_cluster(
        tmp_path / "cluster",
        nodes="perlbal",
        bootstrap=False,
        monitor_interval=0.3,
        test_write_interval=0.5,
    ) as cluster:
        yield cluster


@pytest.fixture
def admin(empty_cluster: MogileCluster) -> Iterator[ClusterAdmin]:
    admin = ClusterAdmin(empty_cluster.trackers, timeout=5)
    try:
        yield admin
    finally:
        admin.close()
