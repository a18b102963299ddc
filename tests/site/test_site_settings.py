"""Settings from the environment: the parsers, and the settings module in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from avatar_site import env
from django.core.exceptions import ImproperlyConfigured

pytestmark = pytest.mark.unit

APP_DIR = Path(__file__).resolve().parents[2] / "app"


def test_sqlite_url_relative_absolute_and_memory(tmp_path):
    rel = env.parse_database_url("sqlite:///var/db.sqlite3", base_dir=tmp_path)
    assert rel == {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "var/db.sqlite3")}
    absolute = env.parse_database_url("sqlite:////srv/data/site.db", base_dir=tmp_path)
    assert absolute["NAME"] == "/srv/data/site.db"
    assert env.parse_database_url("sqlite://:memory:", base_dir=tmp_path)["NAME"] == ":memory:"


def test_mysql_url_with_escaped_password_port_and_options(tmp_path):
    db = env.parse_database_url(
        "mysql://mogile%40site:p%3Ass%2Fw%40rd@db.internal:3307/avatars?connect_timeout=5",
        base_dir=tmp_path,
    )
    assert db["ENGINE"] == "django.db.backends.mysql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("avatars", "mogile@site", "p:ss/w@rd")
    assert (db["HOST"], db["PORT"]) == ("db.internal", "3307")
    assert db["OPTIONS"]["connect_timeout"] == "5"
    assert db["OPTIONS"]["charset"] == "utf8mb4"
    assert "STRICT_TRANS_TABLES" in db["OPTIONS"]["init_command"]


def test_mysql_url_without_port_and_bad_urls(tmp_path):
    db = env.parse_database_url("mysql://u:p@mysql/site", base_dir=tmp_path)
    assert (db["HOST"], db["PORT"]) == ("mysql", "")
    with pytest.raises(ImproperlyConfigured, match="no database name"):
        env.parse_database_url("mysql://u:p@mysql/", base_dir=tmp_path)
    with pytest.raises(ImproperlyConfigured, match="not supported"):
        env.parse_database_url("oracle://u:p@db/x", base_dir=tmp_path)


def test_cache_memcached_locmem_and_dummy():
    assert env.parse_cache(None, None)["BACKEND"].endswith("LocMemCache")
    one = env.parse_cache(None, "memcached:11211")
    assert one["BACKEND"] == "avatar_site.cache.KeepAlivePyMemcacheCache"
    assert one["LOCATION"] == "memcached:11211"
    two = env.parse_cache("memcached://m1:11211,m2:11211", "ignored:1")
    assert two["LOCATION"] == ["m1:11211", "m2:11211"]
    assert env.parse_cache("locmem://", None)["BACKEND"].endswith("LocMemCache")
    assert env.parse_cache("dummy://", None)["BACKEND"].endswith("DummyCache")
    with pytest.raises(ImproperlyConfigured):
        env.parse_cache("redis://r:6379", None)
    with pytest.raises(ImproperlyConfigured):
        env.parse_cache("memcached://", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5242880", 5242880), ("5M", 5 * 1024**2), ("5MB", 5 * 1024**2), ("512k", 512 * 1024)],
)
def test_sizes(text, expected):
    assert env.parse_size(text, 1) == expected


@pytest.mark.parametrize("text", ["five", "5X", "-1", "0"])
def test_bad_sizes(text):
    with pytest.raises(ImproperlyConfigured):
        env.parse_size(text, 1, name="AVATAR_MAX_BYTES")


def test_booleans_lists_and_trackers():
    assert env.parse_bool("on", False) is True
    assert env.parse_bool("0", True) is False
    assert env.parse_bool(None, True) is True
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG"):
        env.parse_bool("maybe", False, name="DJANGO_DEBUG")
    assert env.parse_list(" a.example , ,b.example ", []) == ["a.example", "b.example"]
    assert env.parse_trackers("t1:7001, t2:7002", []) == ["t1:7001", "t2:7002"]
    with pytest.raises(ImproperlyConfigured, match="host:port"):
        env.parse_trackers("t1", [])
    with pytest.raises(ImproperlyConfigured, match="host:port"):
        env.parse_trackers("t1:http", [])


def load_settings(**environ: str) -> subprocess.CompletedProcess:
    """Import avatar_site.settings in a clean process with exactly these variables."""
    script = (
        "import json, os, django; from avatar_site import settings as s; "
        "d = {k: getattr(s, k) for k in ("
        "'DEBUG', 'SECRET_KEY', 'ALLOWED_HOSTS', 'DATABASES', 'CACHES', 'STORAGES', "
        "'MOGILEFS_TRACKERS', 'MOGILEFS_DOMAIN', 'MOGILEFS_MEDIA_URL', 'SERVE_WITH_PERLBAL', "
        "'AVATAR_MAX_BYTES', 'AVATAR_MAX_PIXELS', 'SECURE_PROXY_SSL_HEADER')}; "
        # What the storages make of them (django_mogilefs.conf checks every option).
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'avatar_site.settings'; django.setup(); "
        "from django.core.files.storage import storages; "
        "c = {a: storages[a].config for a in ('avatars', 'thumbs', 'default')}; "
        "d['config'] = {a: {**vars(v), 'serve_prefix': v.serve_prefix} for a, v in c.items()}; "
        "from django.urls import reverse; "
        "d['serve_url'] = reverse('django_mogilefs:serve', args=['a.png']); "
        "print(json.dumps(d, default=str))"
    )
    # ``python -c`` imports from its working directory: the site, as gunicorn does.
    return subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": os.environ.get("PATH", ""), **environ},
        cwd=APP_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_need_a_secret_key_unless_debug():
    refused = load_settings()
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in refused.stderr

    dev = load_settings(DJANGO_DEBUG="1")
    assert dev.returncode == 0, dev.stderr
    assert json.loads(dev.stdout)["SECRET_KEY"].startswith("django-insecure-")


def test_settings_defaults(tmp_path):
    result = load_settings(DJANGO_SECRET_KEY="k" * 50, DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert s["DEBUG"] is False
    assert s["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert s["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")
    assert s["MOGILEFS_TRACKERS"] == ["127.0.0.1:7001"]
    assert s["MOGILEFS_MEDIA_URL"] == "/media/"
    assert s["SERVE_WITH_PERLBAL"] is True
    assert s["AVATAR_MAX_BYTES"] == 5 * 1024**2
    assert s["AVATAR_MAX_PIXELS"] == 16_000_000
    assert s["SECURE_PROXY_SSL_HEADER"] is None  # X-Forwarded-Proto is not trusted
    avatars, thumbs = s["STORAGES"]["avatars"], s["STORAGES"]["thumbs"]
    assert avatars["BACKEND"] == thumbs["BACKEND"] == "django_mogilefs.storage.MogileFSStorage"
    # Each alias adds its class to the settings; its keys are fresh (a random token).
    assert avatars["OPTIONS"] == {"mogile_class": "avatar", "allow_overwrite": True}
    assert thumbs["OPTIONS"] == {"mogile_class": "thumb", "allow_overwrite": True}
    assert s["STORAGES"]["default"]["OPTIONS"] == {}
    config = s["config"]
    assert config["avatars"]["trackers"] == ["127.0.0.1:7001"]
    assert (config["avatars"]["media_url"], config["avatars"]["serve_prefix"]) == ("/media/",) * 2
    assert (config["avatars"]["timeout"], config["avatars"]["reproxy_cache_for"]) == (3.0, 3600)
    assert (config["default"]["mogile_class"], config["default"]["allow_overwrite"]) == (
        None,
        False,
    )


def test_settings_from_environment():
    result = load_settings(
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="site.example,perlbal",
        DATABASE_URL="mysql://mogile:secret@mysql:3306/avatars",
        MEMCACHED_LOCATION="memcached:11211",
        MOGILEFS_TRACKERS="tracker1:7001,tracker2:7001",
        MOGILEFS_DOMAIN="site",
        MOGILEFS_MEDIA_URL="/files",
        SERVE_WITH_PERLBAL="off",
        AVATAR_MAX_BYTES="2MB",
        AVATAR_MAX_PIXELS="1000000",
        DJANGO_SECURE_PROXY_SSL_HEADER="1",
    )
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert s["ALLOWED_HOSTS"] == ["site.example", "perlbal"]
    db = s["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.mysql"
    assert (db["HOST"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "mysql",
        "avatars",
        "mogile",
        "secret",
    )
    assert s["CACHES"]["default"]["BACKEND"] == "avatar_site.cache.KeepAlivePyMemcacheCache"
    assert s["MOGILEFS_TRACKERS"] == ["tracker1:7001", "tracker2:7001"]
    assert s["SERVE_WITH_PERLBAL"] is False
    config = s["config"]["thumbs"]
    assert config["trackers"] == ["tracker1:7001", "tracker2:7001"]
    assert config["domain"] == "site"
    assert (config["media_url"], config["serve_prefix"]) == ("/files/", "/files/")
    assert s["serve_url"] == "/files/a.png"  # urls.py mounts the view by the same rule
    assert config["serve_with_perlbal"] is False
    assert (s["AVATAR_MAX_BYTES"], s["AVATAR_MAX_PIXELS"]) == (2 * 1024**2, 1_000_000)
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_secure_proxy_ssl_header_is_a_boolean_setting():
    refused = load_settings(DJANGO_SECRET_KEY="k" * 50, DJANGO_SECURE_PROXY_SSL_HEADER="https")
    assert refused.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER='https' is not a boolean" in refused.stderr
    off = load_settings(DJANGO_SECRET_KEY="k" * 50, DJANGO_SECURE_PROXY_SSL_HEADER="0")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["SECURE_PROXY_SSL_HEADER"] is None
