"""Bootstrap run again changes nothing: the cluster matches its description already."""

from __future__ import annotations

import pytest

from e2e.conftest import Target, run_hook

pytestmark = pytest.mark.e2e


def snapshot(target: Target) -> tuple[object, ...]:
    admin = target.admin
    devices = sorted((d.devid, d.hostid, d.status) for d in admin.get_devices())
    hosts = sorted((h.hostid, h.name, h.ip, h.http_port, h.status) for h in admin.get_hosts())
    return admin.get_domains(), hosts, devices


def test_bootstrap_run_again_changes_nothing(target: Target) -> None:
    if target.bootstrap is None:
        pytest.skip("set E2E_BOOTSTRAP to the deployment's bootstrap command")
    before = snapshot(target)
    for _ in range(2):
        out = run_hook(target.bootstrap).stdout
        assert "Plan: nothing to do" in out, out
        assert "Applied" not in out, out
    assert snapshot(target) == before
