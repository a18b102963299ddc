"""Reading mogile/cluster.toml-style descriptions (no tracker involved)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster_description import DescriptionError, load

pytestmark = pytest.mark.unit

VALID = """
[domain]
name = "${DOMAIN:-avatars}"

[[classes]]
name = "avatar"
mindevcount = 3
replpolicy = "MultipleHosts()"

[[hosts]]
name = "node1"
address = "${NODE1:-127.0.0.1}"
port = 7500
devices = [1, 4]

[[hosts]]
name = "node2"
address = "storage-two"
port = "${NODE_PORT:-7500}"
devices = [2]
"""

NAMES = {"storage-two": "10.0.0.2", "storage-three": "10.0.0.3"}


def resolver(address: str) -> str:
    if address[0].isdigit():
        return address
    try:
        return NAMES[address]
    except KeyError:
        raise OSError(f"unknown host {address}") from None


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return path


def test_defaults_apply_when_the_environment_is_empty(tmp_path: Path) -> None:
    desc = load(write(tmp_path, VALID), {}, resolver)
    assert desc.domain == "avatars"
    assert [(h.name, h.ip, h.port, h.devices) for h in desc.hosts] == [
        ("node1", "127.0.0.1", 7500, (1, 4)),
        ("node2", "10.0.0.2", 7500, (2,)),
    ]
    assert desc.devids == [1, 2, 4]
    assert desc.classes[0].replpolicy == "MultipleHosts()"


def test_environment_overrides_defaults_and_names_are_resolved(tmp_path: Path) -> None:
    env = {"DOMAIN": "photos", "NODE1": "storage-three", "NODE_PORT": "7600"}
    desc = load(write(tmp_path, VALID), env, resolver)
    assert desc.domain == "photos"
    assert [(h.address, h.ip, h.port) for h in desc.hosts] == [
        ("storage-three", "10.0.0.3", 7500),
        ("storage-two", "10.0.0.2", 7600),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("${DOMAIN:-avatars}", "${DOMAIN}"),
            "domain.name: environment variable DOMAIN is not set",
        ),
        (("mindevcount = 3", "mindevcount = 0"), "classes[0].mindevcount must be at least 1"),
        (("mindevcount = 3", 'mindevcount = "three"'), "classes[0].mindevcount must be an integer"),
        (("replpolicy", "replpolcy"), "unknown key(s) in classes[0]: replpolcy"),
        (("devices = [2]", "devices = [1]"), "duplicate device id: 1"),
        (("devices = [2]", "devices = []"), "hosts[1].devices must be a non-empty list"),
        (('"storage-two"', '"127.0.0.1"'), "duplicate host address"),
        (('"storage-two"', '"nowhere"'), "hosts[1].address: cannot resolve 'nowhere'"),
        (('name = "node2"', 'name = "node1"'), "duplicate host name: node1"),
        (("port = 7500", "port = 70000"), "hosts[0].port must be at most 65535"),
        (("[domain]", "[domains]"), "unknown key(s) in the file: domains"),
    ],
)
def test_mistakes_are_reported_with_the_file_and_the_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, VALID.replace(*change, 1))
    with pytest.raises(DescriptionError) as excinfo:
        load(path, {}, resolver)
    assert str(excinfo.value).startswith(f"{path}: ")
    assert message in str(excinfo.value)


def test_missing_file_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(DescriptionError, match=r"nope\.toml: file not found"):
        load(tmp_path / "nope.toml", {}, resolver)
    with pytest.raises(DescriptionError, match=r"cluster\.toml: invalid TOML: .*line 2"):
        load(write(tmp_path, "[domain]\nname = \n"), {}, resolver)


def test_a_cluster_needs_hosts(tmp_path: Path) -> None:
    with pytest.raises(DescriptionError, match=r"describe at least one \[\[hosts\]\] entry"):
        load(write(tmp_path, '[domain]\nname = "d"\n'), {}, resolver)
