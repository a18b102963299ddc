"""deploy/swarm/stack.yaml: valid, and the production layout docs/production.md describes."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from cluster_description import load as load_description
from compose_yaml import MissingVariable, interpolate

from . import compose_file as cf

pytestmark = pytest.mark.static

STACK = cf.ROOT / "deploy" / "swarm" / "stack.yaml"
STORAGE_NODES = {"mogstored1": "1", "mogstored2": "2", "mogstored3": "3", "mogstored4": "4"}
ONE_SHOTS = ("mogdbsetup", "bootstrap", "migrate")
ADDRESSES = {
    "MOGSTORED1_ADDRESS": "192.0.2.11",
    "MOGSTORED2_ADDRESS": "192.0.2.12",
    "MOGSTORED3_ADDRESS": "192.0.2.13",
}
DEPLOY_ENV = {**ADDRESSES, "SECRETS_DIR": "/etc/avatars/secrets"}


def stack() -> dict[str, Any]:
    return cf.load(STACK)


def services() -> dict[str, dict[str, Any]]:
    return stack()["services"]


def env(service: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    raw = services()[service].get("environment") or {}
    environ = DEPLOY_ENV if environ is None else environ
    return {key: interpolate(str(value), environ) for key, value in raw.items()}


def constraints(service: str) -> list[str]:
    return services()[service]["deploy"].get("placement", {}).get("constraints", [])


def test_the_stack_validates_against_the_compose_spec() -> None:
    result = cf.check_schema("vendor.compose-spec", STACK)
    assert result.returncode == 0, result.stdout + result.stderr
    # Engine 20.10's `docker stack deploy` refuses a file without a 3.x version, and
    # max_replicas_per_node needs 3.8.
    major, minor = map(int, stack()["version"].split("."))
    assert major == 3 and minor >= 8


def test_the_stack_runs_the_roles_of_compose_yaml() -> None:
    compose_roles = {
        name.rstrip("0123456789")
        for name in cf.services()
        if cf.in_default_profile(name) and name != "e2e"
    }
    stack_roles = {name.rstrip("0123456789") for name in services()}
    assert stack_roles == compose_roles | {"migrate"}
    assert set(STORAGE_NODES) <= set(services())


def test_only_perlbal_publishes_a_port_on_its_own_machine() -> None:
    published = {name: s["ports"] for name, s in services().items() if s.get("ports")}
    assert list(published) == ["perlbal"]
    assert published["perlbal"] == [
        {"target": 8080, "published": 8080, "protocol": "tcp", "mode": "host"}
    ]
    assert constraints("perlbal") == ["node.labels.mogile.front == true"]
    assert services()["perlbal"]["deploy"]["placement"]["max_replicas_per_node"] == 1


def test_two_trackers_never_share_a_machine_and_clients_list_every_task() -> None:
    tracker = services()["mogilefsd"]["deploy"]
    assert tracker["replicas"] == 2
    assert tracker["placement"]["max_replicas_per_node"] == 1
    assert constraints("mogilefsd") == ["node.labels.mogile.tracker == true"]
    assert tracker["update_config"]["parallelism"] == 1
    for name in ("app", "media", "bootstrap", "migrate"):
        assert env(name)["MOGILEFS_TRACKERS"] == "tasks.mogilefsd:7001", name


def test_each_storage_node_is_pinned_to_its_machine_with_its_own_disks() -> None:
    seen: list[str] = []
    for name, label in STORAGE_NODES.items():
        service = services()[name]
        assert constraints(name) == [f"node.labels.mogile.storage == {label}"], name
        # The tracker stores the machine's address: the node uses the machine's network.
        assert service["networks"] == ["hostnet"], name
        assert service["deploy"]["update_config"]["order"] == "stop-first", name
        devids = env(name)["MOGSTORED_DEVIDS"].split(",")
        mounts = dict(v.split(":")[:2][::-1] for v in service["volumes"])
        assert len(devids) == 2, name
        assert set(mounts) == {f"/var/mogdata/dev{d}" for d in devids}, name
        assert all(source in stack()["volumes"] for source in mounts.values()), name
        seen += devids
    assert len(seen) == len(set(seen)) == 8
    assert stack()["networks"]["hostnet"] == {"external": True, "name": "host"}


@pytest.mark.parametrize("fourth", [False, True])
def test_the_cluster_description_matches_the_storage_machines(fourth: bool) -> None:
    environ = {**DEPLOY_ENV, "MOGSTORED4_ADDRESS": "192.0.2.14"} if fourth else DEPLOY_ENV
    bootstrap = env("bootstrap", environ)
    desc = load_description(cf.ROOT / "mogile" / "cluster.toml", bootstrap)
    nodes = {
        environ[f"MOGSTORED{label}_ADDRESS"]: env(name)["MOGSTORED_DEVIDS"]
        for name, label in STORAGE_NODES.items()
        if label != "4" or fourth
    }
    assert {h.ip: ",".join(map(str, h.devices)) for h in desc.hosts} == nodes
    assert desc.domain == env("app")["MOGILEFS_DOMAIN"] == bootstrap["MOGILEFS_DOMAIN"]


def test_the_fourth_machine_runs_only_when_asked_for() -> None:
    replicas = str(services()["mogstored4"]["deploy"]["replicas"])
    assert interpolate(replicas, DEPLOY_ENV) == "0"
    assert interpolate(replicas, {**DEPLOY_ENV, "MOGSTORED4_REPLICAS": "1"}) == "1"
    for name in ("mogstored1", "mogstored2", "mogstored3"):
        assert "replicas" not in services()[name]["deploy"], name  # one each, always


@pytest.mark.parametrize("missing", [*ADDRESSES, "SECRETS_DIR"])
def test_deploying_without_a_machine_address_or_the_secrets_fails_with_its_name(
    missing: str,
) -> None:
    environ = {k: v for k, v in DEPLOY_ENV.items() if k != missing}
    text = STACK.read_text()
    with pytest.raises(MissingVariable, match=missing):
        interpolate(text, environ)
    assert interpolate(text, DEPLOY_ENV)


def test_every_service_resolves_by_dnsrr_and_long_running_ones_are_checked() -> None:
    for name, service in services().items():
        if name in STORAGE_NODES:  # on the machine's network: no service address at all
            continue
        assert service["deploy"]["endpoint_mode"] == "dnsrr", name
    for name, service in services().items():
        restart = service["deploy"]["restart_policy"]
        if name in ONE_SHOTS:
            assert restart["condition"] == "on-failure", name
            assert restart["max_attempts"] > 1, name
        else:
            assert restart["condition"] == "any", name
            assert service.get("healthcheck", {}).get("test"), name
            assert service["deploy"]["resources"]["limits"]["memory"], name


def test_the_data_services_live_on_their_labelled_machines() -> None:
    assert constraints("mysql") == ["node.labels.mogile.db == true"]
    assert "mysql-data:/var/lib/mysql" in services()["mysql"]["volumes"]
    for name in ("app", "media", "memcached"):
        assert constraints(name) == ["node.labels.mogile.front == true"], name


def test_images_come_from_the_deploying_environment() -> None:
    for name, service in services().items():
        assert re.fullmatch(r"\$\{[A-Z_]+_IMAGE:-[^}]+\}", service["image"]), name
    pinned = {"APP_IMAGE": "registry.example/app:1", "MOGILE_IMAGE": "registry.example/mogile:2"}
    assert interpolate(services()["app"]["image"], pinned) == "registry.example/app:1"
    assert interpolate(services()["mogilefsd"]["image"], pinned) == "registry.example/mogile:2"


def test_passwords_are_swarm_secrets_that_each_service_is_given() -> None:
    declared = stack()["secrets"]
    for secret in declared.values():
        assert interpolate(secret["file"], DEPLOY_ENV).startswith("/etc/avatars/secrets/")
    for name, service in services().items():
        given = set(service.get("secrets", []))
        wanted = {
            value.removeprefix("/run/secrets/")
            for key, value in env(name).items()
            if key.endswith("_FILE")
        }
        assert wanted == given, name
        assert given <= set(declared), name
        assert not [k for k in env(name) if "PASSWORD" in k and not k.endswith("_FILE")], name


def test_the_reproxy_trust_is_the_backend_subnet_and_only_it_is_internal() -> None:
    networks = stack()["networks"]
    assert networks["backend"]["internal"] is True
    subnet = ipaddress.ip_network(interpolate(networks["backend"]["ipam"]["config"][0]["subnet"]))
    for name in ("app", "media"):
        assert ipaddress.ip_network(env(name)["MOGILEFS_REPROXY_FROM"]) == subnet, name
    assert not networks["storage"].get("internal")
    for name in ("mysql", "mogdbsetup", "memcached", "migrate"):
        assert services()[name]["networks"] == ["backend"], name


def test_updates_replace_one_task_at_a_time_new_first_where_two_can_run() -> None:
    for name in ("app", "media", "memcached"):
        update = services()[name]["deploy"]["update_config"]
        assert update["order"] == "start-first", name
    # A machine's port (Perlbal), disks (storage) or volume (MySQL), or one tracker per
    # machine: the old task must stop before its replacement can start.
    for name in ("perlbal", "mysql", "mogilefsd", *STORAGE_NODES):
        assert services()[name]["deploy"]["update_config"]["order"] == "stop-first", name
    for name, service in services().items():
        if name in ONE_SHOTS:
            continue
        update = service["deploy"]["update_config"]
        assert update["failure_action"] == "rollback", name
        assert update.get("parallelism", 1) == 1, name
    # Stopping, each serves on for SHUTDOWN_DELAY (while DNS and Perlbal's pools drop it),
    # then shuts down gracefully (20 s for gunicorn and granian, 25 s for Perlbal),
    # within the grace period.
    for name, graceful in (("app", 20), ("media", 20), ("perlbal", 25)):
        delay = int(env(name)["SHUTDOWN_DELAY"])
        grace = services()[name]["stop_grace_period"]
        assert delay > 0 and int(grace.removesuffix("s")) > delay + graceful, name
