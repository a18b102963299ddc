"""scripts/bootstrap.py against an empty fake tracker and three real storage nodes."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import bootstrap
import pytest
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.testing import free_port
from django_mogilefs.testing.cluster import MogileCluster
from django_mogilefs.testing.faketracker import FakeTracker
from ownenv import own_environ

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTION = ROOT / "mogile" / "cluster.toml"
OUTER_ENVIRONMENT = {
    "MOGILEFS_TRACKERS": "127.0.0.1:1",
    "MOGILEFS_DOMAIN": "testdom",
    "MOGILEFS_CLUSTER_FILE": "/nonexistent/cluster.toml",
    "MOGSTORED2_ADDRESS": "127.0.0.99",
}


def run(
    cluster: MogileCluster, *args: str, description: Path = DESCRIPTION
) -> tuple[int, str, str]:
    """bootstrap.main with the project's description, pointed at the test cluster."""
    out, err = io.StringIO(), io.StringIO()
    environ = {"MOGSTORED_PORT": str(cluster.nodes[0].port)}
    argv = ["--cluster", str(description), "--trackers", ",".join(cluster.trackers)]
    code = bootstrap.main([*argv, "--poll", "0.1", *args], environ, out, err)
    return code, out.getvalue(), err.getvalue()


def snapshot(admin: ClusterAdmin) -> tuple[object, ...]:
    devices = [(d.devid, d.hostid, d.status) for d in admin.get_devices()]
    return admin.get_domains(), admin.get_hosts(), devices


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = DESCRIPTION.read_text()
    assert old in text
    path = tmp_path / "cluster.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_first_run_builds_the_cluster_and_waits_until_it_is_ready(
    empty_cluster: MogileCluster, admin: ClusterAdmin
) -> None:
    code, out, err = run(empty_cluster, "--wait", "20")
    assert (code, err) == (0, "")
    assert "+ create domain avatars" in out
    assert "+ create device 3 on host mogstored3" in out
    assert "+ create device 6 on host mogstored3" in out
    assert "mogstored4" not in out, "the optional fourth host is not described"
    assert "Applied 12 change(s)." in out
    assert "Ready after" in out

    classes = admin.get_domains()["avatars"]
    described = {
        n: (c.mindevcount, c.replpolicy, c.hashtype) for n, c in classes.items() if n != "default"
    }
    assert described == {
        "avatar": (3, "MultipleHosts()", "MD5"),
        "thumb": (1, "MultipleHosts()", "NONE"),
    }
    port = empty_cluster.nodes[0].port
    assert [(h.name, h.ip, h.http_port, h.status) for h in admin.get_hosts()] == [
        (f"mogstored{i}", f"127.0.0.{i}", port, "alive") for i in (1, 2, 3)
    ]
    assert sorted((d.devid, d.ready) for d in admin.get_devices()) == [
        (devid, True) for devid in range(1, 7)
    ]


def test_second_run_changes_nothing(empty_cluster: MogileCluster, admin: ClusterAdmin) -> None:
    assert run(empty_cluster, "--wait", "20")[0] == 0
    before = snapshot(admin)
    code, out, err = run(empty_cluster, "--wait", "20")
    assert (code, err) == (0, "")
    assert "Plan: nothing to do" in out
    assert "Applied" not in out
    assert snapshot(admin) == before


def test_a_changed_class_is_updated(
    empty_cluster: MogileCluster, admin: ClusterAdmin, tmp_path: Path
) -> None:
    assert run(empty_cluster, "--wait", "0")[0] == 0
    description = edited(tmp_path, "mindevcount = 1", "mindevcount = 2")
    code, out, _ = run(empty_cluster, "--wait", "0", description=description)
    assert code == 0
    assert "+ update class avatars/thumb (mindevcount 1 -> 2)" in out
    assert admin.get_domains()["avatars"]["thumb"].mindevcount == 2
    assert admin.get_domains()["avatars"]["avatar"].mindevcount == 3


def test_a_class_without_its_hashtype_gets_it(
    empty_cluster: MogileCluster, admin: ClusterAdmin
) -> None:
    assert run(empty_cluster, "--wait", "0")[0] == 0
    admin.update_class("avatars", "avatar", 3, hashtype="NONE")
    code, out, _ = run(empty_cluster, "--wait", "0")
    assert code == 0
    assert "+ update class avatars/avatar (hashtype NONE -> MD5)" in out
    assert admin.get_domains()["avatars"]["avatar"].hashtype == "MD5"


def test_drift_is_reported_and_left_alone(
    empty_cluster: MogileCluster, admin: ClusterAdmin
) -> None:
    assert run(empty_cluster, "--wait", "0")[0] == 0
    admin.create_host("spare", "127.0.0.9", 7500, status="down")
    admin.set_state("mogstored3", 3, "readonly")
    admin.create_class("avatars", "legacy", 2)

    code, out, _ = run(empty_cluster, "--wait", "0")
    assert code == 0
    assert "Plan: nothing to do" in out
    assert "host spare (127.0.0.9:7500, down) is on the tracker but not in the description" in out
    assert "device 3 on mogstored3 is 'readonly' on the tracker, not alive" in out
    assert "class avatars/legacy is on the tracker but not in the description" in out
    assert "spare" in [h.name for h in admin.get_hosts()]
    assert {d.devid: d.status for d in admin.get_devices()}[3] == "readonly"


def test_a_dead_device_stays_dead_is_reported_and_not_waited_for(
    empty_cluster: MogileCluster, admin: ClusterAdmin
) -> None:
    assert run(empty_cluster, "--wait", "20")[0] == 0
    admin.set_state("mogstored1", 4, "dead")
    code, out, err = run(empty_cluster, "--wait", "20")
    assert (code, err) == (0, ""), out
    assert "Plan: nothing to do" in out
    assert "device 4 on mogstored1 is dead: its files were copied elsewhere" in out
    assert "Ready after" in out and "device(s) 1, 2, 3, 5, 6." in out
    assert {d.devid: d.status for d in admin.get_devices()}[4] == "dead"


def test_the_fourth_host_is_described_only_when_it_has_an_address(
    empty_cluster: MogileCluster, admin: ClusterAdmin
) -> None:
    out = io.StringIO()
    environ = {
        "MOGSTORED_PORT": str(empty_cluster.nodes[0].port),
        "MOGSTORED4_ADDRESS": "127.0.0.4",
    }
    argv = ["--cluster", str(DESCRIPTION), "--trackers", ",".join(empty_cluster.trackers)]
    assert bootstrap.main([*argv, "--dry-run"], environ, out, io.StringIO()) == 0
    port = environ["MOGSTORED_PORT"]
    assert f"+ create host mogstored4 127.0.0.4:{port} (alive)" in out.getvalue()
    assert "+ create device 8 on host mogstored4" in out.getvalue()
    assert admin.get_hosts() == [], "a dry run changes nothing"


def test_a_retired_host_is_a_note_not_drift(
    empty_cluster: MogileCluster, admin: ClusterAdmin
) -> None:
    assert run(empty_cluster, "--wait", "0")[0] == 0
    admin.create_host("mogstored4", "127.0.0.4", 7500, status="alive")
    admin.create_device(7, "mogstored4", state="dead")
    admin.update_host("mogstored4", status="dead")
    code, out, _ = run(empty_cluster, "--wait", "0")
    assert code == 0
    assert "host mogstored4 (127.0.0.4) is dead (retired)" in out
    assert "device 7 on mogstored4 is dead (retired)" in out
    assert "Drift" not in out


def test_a_conflict_stops_before_any_change(
    empty_cluster: MogileCluster, admin: ClusterAdmin
) -> None:
    admin.create_host("old-node", "127.0.0.2", 7500)
    code, out, err = run(empty_cluster, "--wait", "0")
    assert code == 1
    assert "IP 127.0.0.2 already belongs to host old-node" in out
    assert "bootstrap: error: 1 conflict(s) between tracker and description" in err
    assert admin.get_domains() == {}
    assert [h.name for h in admin.get_hosts()] == ["old-node"]


def test_waiting_gives_up_and_says_which_device_is_not_ready(
    empty_cluster: MogileCluster, tmp_path: Path
) -> None:
    # Device 9 has no directory on mogstored1, so the tracker never sees it writeable.
    description = edited(tmp_path, "devices = [1, 4]", "devices = [1, 4, 9]")
    code, _, err = run(empty_cluster, "--wait", "1.5", description=description)
    assert code == 1
    assert "bootstrap: error: not ready after 1.5s: device 9: alive," in err
    assert "device 1" not in err


def test_an_unreachable_tracker_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port(("127.0.0.1",))
    out, err = io.StringIO(), io.StringIO()
    code = bootstrap.main(["--trackers", f"127.0.0.1:{port}", "--wait", "2"], {}, out, err)
    assert code == 1
    assert f"Waiting up to 2s for a tracker of 127.0.0.1:{port}" in out.getvalue()
    assert "bootstrap: error: tracker unreachable: No MogileFS tracker answered" in err.getvalue()
    assert f"127.0.0.1:{port}" in err.getvalue()


def test_a_tracker_that_starts_later_is_waited_for() -> None:
    """Swarm starts the bootstrap job and the trackers at once: it waits, bounded."""
    port = free_port(("127.0.0.1",))
    trackers: list[FakeTracker] = []
    timer = threading.Timer(1.5, lambda: trackers.append(FakeTracker(port=port).start()))
    timer.start()
    out, err = io.StringIO(), io.StringIO()
    try:
        argv = ["--trackers", f"127.0.0.1:{port}", "--dry-run", "--wait", "30", "--poll", "0.1"]
        code = bootstrap.main(argv, {}, out, err)
    finally:
        timer.join()
        for tracker in trackers:
            tracker.shutdown()
    assert (code, err.getvalue()) == (0, "")
    assert "Waiting up to 30s for a tracker" in out.getvalue()
    assert "+ create domain avatars" in out.getvalue()


def test_a_bad_description_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    description = edited(tmp_path, "mindevcount = 3", "mindevcount = -3")
    out, err = io.StringIO(), io.StringIO()
    code = bootstrap.main(
        ["--cluster", str(description), "--trackers", "127.0.0.1:1"], {}, out, err
    )
    assert code == 1
    assert err.getvalue() == (
        f"bootstrap: error: bad cluster description {description}: "
        "classes[0].mindevcount must be at least 1\n"
    )


def test_the_script_runs_from_the_command_line(
    empty_cluster: MogileCluster, admin: ClusterAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a run against a real cluster (or a developer's shell) exports: none of it may
    # reach a script that the test points at its own cluster.
    for name, value in OUTER_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    env = own_environ(
        MOGILEFS_TRACKERS=empty_cluster.trackers[0],
        MOGSTORED_PORT=str(empty_cluster.nodes[0].port),
    )
    script = ROOT / "scripts" / "bootstrap.py"
    result = subprocess.run(
        [sys.executable, str(script), "--dry-run"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "+ create domain avatars" in result.stdout
    port = empty_cluster.nodes[0].port
    assert f"+ create host mogstored2 127.0.0.2:{port} (alive)" in result.stdout
    assert admin.get_domains() == {}  # a dry run changes nothing


def test_namespace_only_creates_domain_and_classes_and_touches_no_host(
    empty_cluster: MogileCluster, admin: ClusterAdmin
) -> None:
    code, out, err = run(empty_cluster, "--namespace-only", "--wait", "20")
    assert (code, err) == (0, "")
    assert "+ create domain avatars" in out
    assert "host" not in out.split("Plan:", 1)[1]
    assert set(admin.get_domains()["avatars"]) == {"default", "avatar", "thumb"}
    assert admin.get_hosts() == [] and admin.get_devices() == []
    code, out, _ = run(empty_cluster, "--namespace-only")
    assert code == 0 and "Plan: nothing to do" in out
