"""Fixtures the integration tests share (the cluster itself comes from tests/conftest.py)."""

from __future__ import annotations

import pytest
from django_mogilefs.cluster import parse_domains
from django_mogilefs.testing.cluster import MogileCluster


@pytest.fixture(scope="module")
def md5_class(mogile_cluster: MogileCluster) -> str:
    """The cluster's ``avatar`` class, which has hashtype MD5 (as mogile/cluster.toml says)."""
    classes = parse_domains(mogile_cluster.call("get_domains").args).get(mogile_cluster.domain, {})
    if "avatar" not in classes:
        pytest.fail(f"domain {mogile_cluster.domain} has no avatar class")
    if classes["avatar"].hashtype != "MD5":
        pytest.fail(f"domain {mogile_cluster.domain}: class avatar needs hashtype MD5")
    return "avatar"
