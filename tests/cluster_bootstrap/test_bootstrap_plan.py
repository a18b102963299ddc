"""bootstrap's planning and applying, with the tracker's answers made up."""

from __future__ import annotations

from pathlib import Path

import bootstrap
import pytest
from cluster_description import ClusterDescription, load
from django_mogilefs.cluster import ClassInfo, DeviceInfo, HostInfo
from django_mogilefs.exceptions import HostExistsError, UnknownHostError

pytestmark = pytest.mark.unit

DESCRIPTION = Path(__file__).resolve().parents[2] / "mogile" / "cluster.toml"
CLASSES = {
    "default": ClassInfo("default", 2, "MultipleHosts()", "NONE"),
    "avatar": ClassInfo("avatar", 3, "MultipleHosts()", "MD5"),
    "thumb": ClassInfo("thumb", 1, "MultipleHosts()", "NONE"),
}


def described() -> ClusterDescription:
    return load(DESCRIPTION, {})


def hosts() -> list[HostInfo]:
    return [HostInfo(i, f"mogstored{i}", f"127.0.0.{i}", 7500, "alive") for i in (1, 2, 3)]


def devices() -> list[DeviceInfo]:
    """Devices 1..6, device i on host (i - 1) % 3 + 1, as the description has them."""
    return [
        DeviceInfo(i, (i - 1) % 3 + 1, "alive", "writeable", 100, 1000, 10, 990)
        for i in range(1, 7)
    ]


def summaries(plan: bootstrap.Plan) -> list[str]:
    return [c.summary for c in plan.changes]


def test_a_matching_tracker_needs_nothing() -> None:
    plan = bootstrap.make_plan(described(), {"avatars": CLASSES}, hosts(), devices())
    assert (plan.changes, plan.drift, plan.conflicts) == ([], [], [])


def test_a_moved_host_is_updated_in_place() -> None:
    moved = hosts()
    moved[1] = HostInfo(2, "mogstored2", "10.0.0.2", 7500, "alive")
    plan = bootstrap.make_plan(described(), {"avatars": CLASSES}, moved, devices())
    assert summaries(plan) == ["update host mogstored2: 10.0.0.2:7500 -> 127.0.0.2:7500"]


def test_a_new_replication_policy_comes_with_an_fsck_note() -> None:
    classes = {**CLASSES, "avatar": ClassInfo("avatar", 3, "MultipleDevices()", "MD5")}
    plan = bootstrap.make_plan(described(), {"avatars": classes}, hosts(), devices())
    assert summaries(plan) == [
        "update class avatars/avatar (replpolicy MultipleDevices() -> MultipleHosts())"
    ]
    assert "after an fsck" in plan.notes[0]


def test_the_avatar_class_gets_its_md5_hashtype() -> None:
    classes = {**CLASSES, "avatar": ClassInfo("avatar", 3, "MultipleHosts()", "NONE")}
    plan = bootstrap.make_plan(described(), {"avatars": classes}, hosts(), devices())
    assert summaries(plan) == ["update class avatars/avatar (hashtype NONE -> MD5)"]


def test_a_device_registered_on_another_host_is_a_conflict() -> None:
    swapped = devices()
    swapped[0] = DeviceInfo(1, 2, "alive", "writeable", 100, 1000, 10, 990)
    plan = bootstrap.make_plan(described(), {"avatars": CLASSES}, hosts(), swapped)
    assert plan.conflicts == [
        "device 1 belongs to host mogstored2 on the tracker, not to mogstored1 "
        "(device ids are never reused: pick a new one)"
    ]


def test_too_few_hosts_for_a_class_is_noted(tmp_path: Path) -> None:
    text = DESCRIPTION.read_text().replace("mindevcount = 3", "mindevcount = 4")
    (tmp_path / "c.toml").write_text(text)
    plan = bootstrap.make_plan(load(tmp_path / "c.toml", {}), {}, [], [])
    assert any("wants 4 copies on different hosts but only 3" in n for n in plan.notes)


class FlakyAdmin:
    """create_device fails as a query worker that has not seen the new host yet."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def create_device(self, devid: int, hostname: str, state: str) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise UnknownHostError("unknown_host", "Host not found")


def test_a_change_not_yet_visible_to_every_worker_is_retried() -> None:
    admin = FlakyAdmin(failures=2)
    change = bootstrap.Change("create device 1", lambda a: a.create_device(1, "h", state="alive"))
    assert bootstrap.apply_change(admin, change, sleep=lambda _: None) == "done"  # type: ignore[arg-type]
    assert admin.calls == 3
    with pytest.raises(UnknownHostError):
        bootstrap.apply_change(FlakyAdmin(99), change, settle=0, sleep=lambda _: None)  # type: ignore[arg-type]


def test_created_meanwhile_is_fine_but_a_taken_ip_is_not() -> None:
    def exists(code: str) -> bootstrap.Change:
        def apply(_: object) -> None:
            raise HostExistsError(code, "")

        return bootstrap.Change("create host h", apply)

    assert bootstrap.apply_change(None, exists("host_exists")) == "already there"  # type: ignore[arg-type]
    with pytest.raises(bootstrap.BootstrapError, match="the IP is used by another host"):
        bootstrap.apply_change(None, exists("dup"))  # type: ignore[arg-type]


def test_import_hint_names_the_fix_that_works():
    # A Python without the package: the hint says to install it and which Python to use.
    hint = bootstrap.import_hint(ModuleNotFoundError(name="django_mogilefs"), "/usr/bin/python3")
    assert "/usr/bin/python3 does not have the django-mogilefs package" in hint
    assert hint.endswith("pip install .) and run .venv/bin/python scripts/bootstrap.py")
    assert "PYTHONPATH" not in hint
    # The package is there but one of its dependencies is not.
    missing = ModuleNotFoundError("No module named 'pymogilefs'", name="pymogilefs")
    hint = bootstrap.import_hint(missing, "/usr/bin/python3")
    assert "No module named 'pymogilefs' in /usr/bin/python3" in hint
    assert "make deps" in hint and ".venv/bin/python scripts/bootstrap.py" in hint
