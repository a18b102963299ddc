"""compose.yaml: valid, and the topology the design asks for (no Docker engine needed)."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cluster_description import load as load_description

from . import compose_file as cf

pytestmark = pytest.mark.static

STORAGE_NODES = ("mogstored1", "mogstored2", "mogstored3")
EXTRA_NODE = "mogstored4"  # the `storage4` profile's machine
INTERNAL_ONLY = (
    "mysql",
    "mogdbsetup",
    "mogilefsd",
    *STORAGE_NODES,
    "memcached",
    "app",
    "media",
)
# What only the app (gunicorn) has: the staff account it creates, and its listener.
APP_ONLY = {"DJANGO_STAFF_USERNAME", "DJANGO_STAFF_PASSWORD_FILE", "GUNICORN_BIND"}
# The web tiers behind Perlbal, each with the variable that says where it listens, and
# Perlbal's pool that sends to it.
WEB_TIERS = {
    "app": ("GUNICORN_BIND", "PERLBAL_BACKENDS"),
    "media": ("MEDIA_BIND", "PERLBAL_MEDIA_BACKENDS"),
}


def long_running() -> list[str]:
    return [s for s in cf.services() if cf.in_default_profile(s) and not cf.is_one_shot(s)]


def test_compose_yaml_validates_against_the_compose_spec() -> None:
    result = cf.check_schema("vendor.compose-spec", cf.ROOT / "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_perlbal_publishes_a_port_and_only_on_localhost_by_default() -> None:
    published = {name: s["ports"] for name, s in cf.services().items() if s.get("ports")}
    assert list(published) == ["perlbal"]
    assert [cf.interpolate(str(p)) for p in published["perlbal"]] == ["127.0.0.1:8080:8080"]
    assert not [name for name, s in cf.services().items() if s.get("network_mode") == "host"]


def test_every_long_running_service_has_a_healthcheck() -> None:
    assert len(long_running()) >= 8
    for name in long_running():
        check = cf.services()[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_every_dependency_waits_for_a_condition() -> None:
    for name in cf.services():
        for dep, config in cf.depends_on(name).items():
            condition = config.get("condition")
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {dep}: {condition!r}"
            )
            if condition == "service_healthy":
                assert cf.services()[dep].get("healthcheck"), f"{dep} has no healthcheck"
            else:
                assert cf.is_one_shot(dep), f"{dep} is not a one-shot service"


def test_up_wait_returns_only_when_the_site_answers() -> None:
    # `docker compose up --wait` fails on a one-shot container that exited unless a
    # running service waits for it to complete; and the published proxy must come last.
    waited_for = {
        dep
        for name in long_running()
        for dep, config in cf.depends_on(name).items()
        if config.get("condition") == "service_completed_successfully"
    }
    one_shots = {s for s in cf.services() if cf.in_default_profile(s) and cf.is_one_shot(s)}
    assert one_shots == {"mogdbsetup", "bootstrap"}
    assert one_shots <= waited_for

    def upstream(name: str) -> set[str]:
        deps = set(cf.depends_on(name))
        return deps.union(*(upstream(d) for d in deps)) if deps else set()

    assert upstream("perlbal") == {s for s in cf.services() if cf.in_default_profile(s)} - {
        "perlbal"
    }
    assert cf.depends_on("app")["bootstrap"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(cf.services()["perlbal"]["healthcheck"]["test"])


def test_database_tracker_and_storage_are_on_the_internal_network_only() -> None:
    nets = cf.load()["networks"]
    assert nets["backend"]["internal"] is True
    assert not nets["frontend"].get("internal")
    for name in INTERNAL_ONLY:
        assert set(cf.networks(name)) == {"backend"}, name
    assert set(cf.networks("perlbal")) == {"frontend", "backend"}


def test_storage_nodes_have_two_devices_each_with_its_own_volume_and_address() -> None:
    nodes = [s for s, c in cf.services().items() if c.get("command") == "mogstored"]
    assert sorted(nodes) == [*STORAGE_NODES, EXTRA_NODE]
    assert cf.services()[EXTRA_NODE]["profiles"] == ["storage4"]
    assert all("profiles" not in cf.services()[name] for name in STORAGE_NODES)
    subnet = ipaddress.ip_network(
        cf.interpolate(cf.load()["networks"]["backend"]["ipam"]["config"][0]["subnet"])
    )
    dynamic = ipaddress.ip_network(
        cf.interpolate(cf.load()["networks"]["backend"]["ipam"]["config"][0]["ip_range"])
    )
    devids, volumes, ips = [], [], set()
    for name in nodes:
        node_devids = cf.environment(name)["MOGSTORED_DEVIDS"].split(",")
        mounts = dict(v.split(":")[:2][::-1] for v in cf.services()[name]["volumes"])
        assert len(node_devids) == 2, name
        assert set(mounts) == {f"/var/mogdata/dev{d}" for d in node_devids}, name
        assert all(source in cf.load()["volumes"] for source in mounts.values()), name
        ip = ipaddress.ip_address(cf.static_ips()[name])
        assert ip in subnet and ip not in dynamic, f"{name}: {ip}"
        devids += node_devids
        volumes += mounts.values()
        ips.add(ip)
    assert len(set(devids)) == len(set(volumes)) == len(devids) == 8
    assert len(ips) == 4


@pytest.mark.parametrize("fourth", [False, True])
def test_cluster_description_matches_the_storage_nodes(fourth: bool) -> None:
    env = dict(cf.environment("bootstrap"))
    env["MOGSTORED4_ADDRESS"] = EXTRA_NODE if fourth else ""
    desc = load_description(cf.ROOT / "mogile" / "cluster.toml", env, resolve=cf.compose_resolver)
    names = [*STORAGE_NODES, EXTRA_NODE] if fourth else STORAGE_NODES
    nodes = {cf.static_ips()[name]: cf.environment(name)["MOGSTORED_DEVIDS"] for name in names}
    assert {h.ip: ",".join(map(str, h.devices)) for h in desc.hosts} == nodes
    assert {h.port for h in desc.hosts} == {7500}
    assert desc.domain == cf.environment("app")["MOGILEFS_DOMAIN"]


def test_the_native_defaults_of_the_description_are_the_loopback_layout() -> None:
    desc = load_description(cf.ROOT / "mogile" / "cluster.toml", {})
    assert [(h.ip, h.port) for h in desc.hosts] == [
        ("127.0.0.1", 7500),
        ("127.0.0.2", 7500),
        ("127.0.0.3", 7500),
    ]
    assert {c.name: c.mindevcount for c in desc.classes} == {"avatar": 3, "thumb": 1}


def test_site_bootstrap_and_tests_share_tracker_domain_and_database() -> None:
    clients = [cf.environment(s) for s in ("app", "media", "bootstrap", "e2e")]
    assert len({(e["MOGILEFS_TRACKERS"], e["MOGILEFS_DOMAIN"]) for e in clients}) == 1
    trackers = [t.split(":") for t in clients[0]["MOGILEFS_TRACKERS"].split(",")]
    assert [host for host, _ in trackers] == ["mogilefsd", "mogilefsd2"]
    for host, port in trackers:
        assert cf.environment(host).get("MOGILEFSD_LISTEN", "0.0.0.0:7001").endswith(f":{port}")
    assert cf.services()["mogilefsd2"] == cf.services()["mogilefsd"], "one tracker, twice"
    url = urlsplit(cf.environment("app")["DATABASE_URL"])
    mysql = cf.environment("mysql")
    assert (url.hostname, url.username, url.path.lstrip("/")) == (
        "mysql",
        mysql["SITE_DB_USER"],
        mysql["SITE_DB_NAME"],
    )
    assert url.password is None, "the password comes from a secret"
    for service in ("mogdbsetup", "mogilefsd", "mogilefsd2"):
        env = cf.environment(service)
        assert (env["MOGILEFS_DB_NAME"], env["MOGILEFS_DB_USER"]) == (
            mysql["MOGILEFS_DB_NAME"],
            mysql["MOGILEFS_DB_USER"],
        )
    assert cf.environment("e2e")["E2E_SITE_URL"] == "http://perlbal:8080"


def _healthcheck_url(name: str) -> str:
    (url,) = re.findall(r"https?://[^'\"\s]+", " ".join(cf.services()[name]["healthcheck"]["test"]))
    return url


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def test_each_web_tier_is_checked_and_reached_on_the_port_it_listens_on() -> None:
    perlbal = cf.environment("perlbal")
    for tier, (listen, pool) in WEB_TIERS.items():
        port = _port(cf.environment(tier)[listen])
        url = urlsplit(_healthcheck_url(tier))
        assert (url.hostname, url.port, url.path) == ("127.0.0.1", port, "/healthz"), tier
        host, _, pool_port = perlbal[pool].rpartition(":")
        assert (host, int(pool_port)) == (tier, port), pool
    # Perlbal's own healthcheck asks the port it publishes.
    (published,) = cf.services()["perlbal"]["ports"]
    assert urlsplit(_healthcheck_url("perlbal")).port == _port(cf.interpolate(str(published)))


def test_the_media_tier_is_the_app_image_under_start_media() -> None:
    media, app = cf.services()["media"], cf.services()["app"]
    assert (media["image"], media["build"]) == (app["image"], app["build"])
    assert media["command"] == ["start-media"]
    assert "command" not in app, "app runs the image's default, start"
    assert media["restart"] == "unless-stopped"
    dockerfile = (cf.ROOT / "app" / "Dockerfile").read_text()
    # The image holds the command (the ENTRYPOINT runs it from PATH).
    (copied,) = re.findall(r"^COPY (app/entrypoint .*) /usr/local/bin/$", dockerfile, re.M)
    assert {"app/start", "app/start-media"} <= set(copied.split())


def test_the_media_tier_gets_the_site_settings_of_the_app() -> None:
    app, media = cf.environment("app"), cf.environment("media")
    assert set(app) >= APP_ONLY
    assert {k: v for k, v in app.items() if k not in APP_ONLY} == {
        k: v for k, v in media.items() if k != "MEDIA_BIND"
    }
    for key in ("DATABASE_URL", "DJANGO_SECRET_KEY_FILE", "CACHE_URL", "MOGILEFS_REPROXY_FROM"):
        assert media[key], key
    assert media["MOGILEFS_REPROXY_FROM"] == cf.static_ips()["perlbal"]
    # The staff account and the migrations are the app's (app/start); not the media tier's.
    assert sorted(cf.services()["media"]["secrets"]) == ["django_secret_key", "site_db_password"]


def test_the_media_tier_starts_after_the_app_and_before_perlbal() -> None:
    deps = cf.depends_on("media")
    assert {name: config["condition"] for name, config in deps.items()} == {
        "mysql": "service_healthy",
        "memcached": "service_healthy",
        "bootstrap": "service_completed_successfully",
        "app": "service_healthy",  # app/start runs the migrations
    }
    perlbal = cf.depends_on("perlbal")
    for tier in ("app", "media"):
        # Perlbal's pools hold the tiers' IPs (resolved once by perlbal/start).
        assert perlbal[tier] == {"condition": "service_healthy", "restart": True}, tier


def test_e2e_reads_metrics_from_both_tiers() -> None:
    env = cf.environment("e2e")
    assert env["E2E_APP_URL"] == "http://app:8000"
    assert env["E2E_MEDIA_TIER_URL"] == "http://media:8001"
    # E2E_MEDIA_URL is the site's MOGILEFS_MEDIA_URL (a path), not an address.
    assert "E2E_MEDIA_URL" not in env
    # The media-tier-down test stops the media container itself, by its compose name.
    assert env["E2E_MEDIA_TIER_STOP"].endswith("docker_api.py stop mogilefs-django-media-1")
    assert env["E2E_MEDIA_TIER_START"].endswith("docker_api.py start mogilefs-django-media-1")


def test_passwords_are_secrets_with_dev_defaults_that_exist() -> None:
    for name, secret in cf.load()["secrets"].items():
        path = cf.ROOT / cf.interpolate(secret["file"])
        assert path.is_file() and path.read_text().strip(), f"{name}: {path}"
        assert os.stat(path).st_mode & 0o044, f"{path} must be readable by the containers"
    for name, service in cf.services().items():
        for key, value in cf.environment(name).items():
            assert "PASSWORD" not in key or key.endswith("_FILE"), f"{name}: {key}"
            if key.endswith("_FILE"):
                secret = Path(value).name
                assert secret in service.get("secrets", []), f"{name} lacks secret {secret}"


def test_data_lives_in_named_volumes() -> None:
    declared = set(cf.load()["volumes"])
    used = {
        v.split(":")[0]
        for s in cf.services().values()
        for v in s.get("volumes", [])
        if not v.startswith((".", DOCKER_SOCKET))
    }
    assert used == declared
    assert "mysql-data" in declared
    assert {v for v in declared if v.startswith("mogstored")} == {
        f"mogstored{(d - 1) % 3 + 1 if d < 7 else 4}-dev{d}" for d in range(1, 9)
    }


DOCKER_SOCKET = "/var/run/docker.sock"


def test_only_the_test_runner_can_reach_the_docker_engine() -> None:
    holders = {
        name
        for name, service in cf.services().items()
        if any(v.startswith(DOCKER_SOCKET) for v in service.get("volumes", []))
    }
    assert holders == {"e2e"}
    e2e = cf.services()["e2e"]["environment"]
    assert "docker_api.py stop" in e2e["E2E_STORAGE_NODE_STOP"]
    assert "docker_api.py start" in e2e["E2E_STORAGE_NODE_START"]


def test_e2e_runs_only_under_its_profile() -> None:
    e2e = cf.services()["e2e"]
    assert e2e["profiles"] == ["e2e"]
    assert e2e["build"]["target"] == "e2e"
    assert cf.depends_on("e2e")["perlbal"]["condition"] == "service_healthy"


def test_ci_override_swaps_only_the_mogile_image() -> None:
    """CI's override keeps compose.yaml's names, addresses, volumes, healthchecks and
    environment: the fake trackers use the tracker's MySQL database as the real ones."""
    override = cf.ci_override()["services"]
    mogile = {
        n
        for n, s in cf.services().items()
        if s.get("image", "").startswith("mogilefs-django/mogile")
    }
    assert set(override) == mogile
    for name, service in override.items():
        assert set(service) == {"image", "build"}, name
        assert service["image"] == "mogilefs-django/fake-mogile"
    assert "volumes" not in cf.ci_override()
    # mogile/'s own entrypoint and healthcheck, with stand-ins for the programs they run.
    dockerfile = (cf.ROOT / ".ci" / "fake-mogile" / "Dockerfile").read_text()
    assert "COPY mogile/entrypoint mogile/healthcheck /usr/local/bin/" in dockerfile
    bin_dir = cf.ROOT / ".ci" / "fake-mogile" / "bin"
    assert {p.name for p in bin_dir.iterdir()} == {"mogilefsd", "mogstored", "mogdbsetup"}
    entrypoint = (cf.ROOT / "mogile" / "entrypoint").read_text()
    for program in ("mogilefsd", "mogstored", "mogdbsetup"):
        assert f"run_as_mogile {program} " in entrypoint


def test_no_healthcheck_needs_a_newer_engine() -> None:
    """start_interval needs Docker Engine 25; the project supports 20.10."""
    for name, service in cf.services().items():
        assert "start_interval" not in service.get("healthcheck", {}), name
