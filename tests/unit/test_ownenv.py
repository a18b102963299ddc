"""What a test hands its own processes, and which node controls a real cluster needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django_mogilefs.testing.cluster import MogileCluster
from integration.nodecontrol import FREEZE, START, STOP, THAW, NodeControl, NodeControlUnavailable
from ownenv import own_environ

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# A real-cluster run's exports and a developer's shell settings.
OUTER = {
    "MOGILEFS_TRACKERS": "tracker1:7001",
    "MOGILEFS_DOMAIN": "testdom",
    "MOGILEFSD_LISTEN": "0.0.0.0:7001",
    "MOGSTORED2_ADDRESS": "10.0.0.2",
    "DJANGO_DEBUG": "true",
    "DATABASE_URL": "mysql://site@db/site",
    "PERLBAL_REPROXY_CACHE_MAXSIZE": "5",
    "AVATAR_MAX_BYTES": "1000",
    "PYTHONPATH": "/elsewhere",
}


def test_own_environ_drops_the_project_settings_and_keeps_the_rest() -> None:
    outer = {**OUTER, "PATH": "/usr/bin", "HOME": "/home/me", "MOGWAI": "kept"}
    env = own_environ(outer, MOGILEFS_TRACKERS="127.0.0.1:7001", PYTHONPATH="app")
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "MOGWAI": "kept",
        "MOGILEFS_TRACKERS": "127.0.0.1:7001",
        "PYTHONPATH": "app",
    }


def test_the_site_tests_settings_ignore_the_outer_environment() -> None:
    probe = (
        "import json, os, testsettings as s; print(json.dumps([s.MOGILEFS_DOMAIN,"
        " s.MOGILEFS_TRACKERS, s.AVATAR_MAX_BYTES, s.DEBUG, os.environ['MOGILEFS_DOMAIN']]))"
    )
    env = {
        **OUTER,
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(str(ROOT / d) for d in ("tests", "app", "scripts")),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # The site's defaults, and the environment put back for the cluster fixture.
    assert json.loads(result.stdout) == [
        "avatars",
        ["127.0.0.1:7001"],
        5 * 1024**2,
        False,
        "testdom",
    ]


def test_a_real_cluster_needs_both_node_commands() -> None:
    real = MogileCluster(["tracker1:7001"], "testdom")
    for environ in ({}, {STOP: "docker compose stop mogstored2"}):
        with pytest.raises(NodeControlUnavailable, match=f"needs {STOP} and {START}"):
            NodeControl.for_cluster(real, environ)
    environ = {STOP: "stop it", START: "start it ", "MOGILEFS_MONITOR_DEADLINE": "90"}
    control = NodeControl.for_cluster(real, environ)
    assert (control.hooks, control.deadline) == (("stop it", "start it"), 90.0)
    with pytest.raises(NodeControlUnavailable, match=f"needs {FREEZE} and {THAW}"):
        control.check_freezing()
    control = NodeControl.for_cluster(real, {**environ, FREEZE: "pause", THAW: "unpause"})
    control.check_freezing()
    assert control.freeze_hooks == ("pause", "unpause")
