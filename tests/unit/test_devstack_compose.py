"""The native stack takes each service's settings from compose.yaml, with native addresses."""

from __future__ import annotations

import re
from pathlib import Path

import compose_yaml as compose
import pytest
import yaml
from devstack.config import StackConfig
from devstack.services import stack_services

pytestmark = pytest.mark.unit

PORTS = {"mogilefsd": 17001, "mogilefsd2": 17002, "memcached": 11999, "app": 18000}
CONFIG = StackConfig(
    var_dir=Path("/srv/var"),
    ports=PORTS | {"media": 18001, "perlbal": 18080, "perlbal-mgmt": 16999},
    node_addresses=("127.9.9.1", "127.9.9.2", "127.9.9.3", "127.9.9.4"),
)
COMPOSE_NAMES = re.compile(r"\b(mogilefsd2?|mogstored\d|memcached|mysql|app|media|perlbal):\d+")


def native(service: str, config: StackConfig = CONFIG) -> dict[str, str]:
    return {s.name: s for s in stack_services(config)}[service].env


@pytest.fixture(autouse=True)
def _no_outer_compose_variables(monkeypatch):
    for name in ("SECRETS_DIR", "SITE_HOSTS", "BACKEND_NET", "MOGILEFS_DOMAIN"):
        monkeypatch.delenv(name, raising=False)


def test_every_compose_setting_of_the_site_reaches_the_native_tiers() -> None:
    for service in ("app", "media", "bootstrap", "perlbal"):
        # No MySQL natively: the site's database is SQLite, so no database password.
        assert set(compose.environment(service)) - {"DATABASE_PASSWORD_FILE"} <= set(
            native(service)
        )
    app = native("app")
    for key in ("SERVE_WITH_PERLBAL", "DJANGO_DEBUG", "DJANGO_STAFF_USERNAME", "MOGILEFS_DOMAIN"):
        assert app[key] == compose.environment("app")[key], key
    assert app["DATABASE_URL"] == "sqlite:////srv/var/db.sqlite3"


def test_compose_addresses_become_the_native_ones() -> None:
    app, media, front, boot = (native(s) for s in ("app", "media", "perlbal", "bootstrap"))
    assert app["MOGILEFS_TRACKERS"] == "127.0.0.1:17001,127.0.0.1:17002"
    assert app["CACHE_URL"] == "memcached://127.0.0.1:11999"
    assert app["MOGILEFS_REPROXY_FROM"] == "127.0.0.1"  # the front Perlbal's address
    assert app["GUNICORN_BIND"] == "127.0.0.1:18000"
    assert media["MEDIA_BIND"] == "127.0.0.1:18001"
    assert (front["PERLBAL_BACKENDS"], front["PERLBAL_MEDIA_BACKENDS"]) == (
        "127.0.0.1:18000",
        "127.0.0.1:18001",
    )
    assert [boot[f"MOGSTORED{i}_ADDRESS"] for i in (1, 2, 3)] == list(CONFIG.node_addresses[:3])
    assert boot["MOGSTORED4_ADDRESS"] == "", "the spare is not described until it is added"
    for service in ("app", "media", "perlbal", "bootstrap"):
        values = " ".join(native(service).values())
        assert not COMPOSE_NAMES.search(values), values
        assert "10.201.7." not in values and "/run/secrets/" not in values


def test_secrets_are_compose_s_files(monkeypatch, tmp_path: Path) -> None:
    app = native("app")
    assert Path(app["DJANGO_SECRET_KEY_FILE"]) == compose.ROOT / "secrets/dev/django_secret_key"
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    assert native("app")["DJANGO_STAFF_PASSWORD_FILE"] == str(tmp_path / "staff_password")


def test_an_existing_cluster_replaces_the_trackers() -> None:
    config = StackConfig(var_dir=Path("/srv/var"), trackers=("t1:7001", "t2:7001"), domain="dom")
    assert [s.name for s in stack_services(config)][:2] == ["memcached", "bootstrap"]
    for service in ("app", "bootstrap"):
        env = native(service, config)
        assert (env["MOGILEFS_TRACKERS"], env["MOGILEFS_DOMAIN"]) == ("t1:7001,t2:7001", "dom")


def test_a_setting_added_to_compose_s_site_env_reaches_app_and_media(monkeypatch) -> None:
    text = compose.COMPOSE_FILE.read_text()
    anchor = "x-site-env: &site-env\n  <<: *mogilefs-client\n"
    assert anchor in text
    changed = text.replace(anchor, anchor + "  AVATAR_MAX_BYTES: 1M\n")
    monkeypatch.setattr(compose, "load", lambda: yaml.safe_load(changed))
    assert native("app")["AVATAR_MAX_BYTES"] == native("media")["AVATAR_MAX_BYTES"] == "1M"
