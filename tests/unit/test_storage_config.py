"""The storage's options: one dict of defaults, OPTIONS over them, checked once; the
serve view, the WSGI fast path and /metrics find the storage through STORAGES."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import override_settings
from django_mogilefs.conf import OPTION_NAMES, serve_prefix
from django_mogilefs.storage import MogileFSStorage, storage_for

from .storage_stubs import LOCMEM, SUBCLASS, FileCluster, ThumbStorage, options_only, storages_for

pytestmark = pytest.mark.unit

TRACKERS = ["127.0.0.1:7001"]


def test_every_option_has_a_default_and_a_checked_value():
    assert set(MogileFSStorage().get_default_settings()) == OPTION_NAMES


def test_unknown_option_fails_loudly_naming_it():
    with pytest.raises(ImproperlyConfigured, match="'mogile_klass'"):
        MogileFSStorage(mogile_klass="avatar")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("trackers", "tracker:notaport", "trackers: Invalid tracker address 'tracker:notaport'"),
        ("timeout", "soon", "timeout='soon'"),
        ("timeout", 0, "timeout=0"),
        ("pathcount", 2.5, "pathcount=2.5"),
        ("http_timeout", (3, 30, 1), "http_timeout"),
        ("serve_with_perlbal", "off", "serve_with_perlbal='off'"),
        ("reproxy_from", "nope", "reproxy_from must be IP addresses"),
        ("path_cache", "elsewhere", "path_cache='elsewhere' is not an alias in CACHES"),
        ("metrics_path", "metrics", "metrics_path='metrics' must start with /"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_option(option, value, message):
    storage = MogileFSStorage(**{"trackers": TRACKERS, "domain": "d", option: value})
    with pytest.raises(ImproperlyConfigured) as raised:
        storage.config  # noqa: B018
    assert message in str(raised.value)


def test_missing_domain_names_option_and_setting():
    with (
        options_only(),
        pytest.raises(ImproperlyConfigured, match=r"domain \(or MOGILEFS_DOMAIN\)"),
    ):
        MogileFSStorage(trackers=TRACKERS).config  # noqa: B018


def test_values_are_typed():
    config = MogileFSStorage(
        trackers="t1:7001, t2:7002", domain="d", timeout="2.5", http_timeout=4, mogile_class=""
    ).config
    assert config.trackers == ("t1:7001", "t2:7002")
    assert (config.timeout, config.http_timeout, config.mogile_class) == (2.5, (4.0, 4.0), None)


def test_settings_are_the_fallback_and_override_settings_works():
    storage = MogileFSStorage()
    with override_settings(MOGILEFS_TRACKERS=["t1:7001"], MOGILEFS_DOMAIN="d1"):
        assert storage.config.domain == "d1"
    with override_settings(MOGILEFS_TRACKERS=["t1:7001"], MOGILEFS_DOMAIN="d2"):
        assert storage.config.domain == "d2"
        assert storage.client.domain == "d2"


def test_options_win_over_settings():
    with override_settings(MOGILEFS_DOMAIN="from-settings", MOGILEFS_TIMEOUT=9):
        config = MogileFSStorage(trackers=TRACKERS, domain="from-options").config
    assert (config.domain, config.timeout) == ("from-options", 9.0)


@pytest.mark.parametrize(
    ("media_url", "url", "prefix"),
    [
        ("/files", "/files/a%20b.png", "/files/"),
        ("/files/", "/files/a%20b.png", "/files/"),
        ("https://cdn.example/m", "https://cdn.example/m/a%20b.png", None),
    ],
)
def test_one_rule_for_the_media_urls_slash(media_url, url, prefix):
    storage = MogileFSStorage(trackers=TRACKERS, domain="d", media_url=media_url)
    assert storage.url("a b.png") == url
    assert storage.config.serve_prefix == serve_prefix(media_url) == prefix


def test_a_project_configured_through_options_only():
    cluster = FileCluster()
    try:
        with options_only(
            CACHES=LOCMEM, STORAGES=storages_for([cluster.tracker.address], media_url="/m")
        ):
            storage = storage_for()
            assert storage is storages["media"]
            name = storage.save("a.txt", ContentFile(b"abc"))
            assert (storage.size(name), storage.url(name)) == (3, "/m/a.txt")
            assert storage.config.trackers == (cluster.tracker.address,)
    finally:
        cluster.close()


def test_storage_for_finds_a_subclass_with_its_own_defaults():
    with options_only(STORAGES=storages_for(TRACKERS, backend=SUBCLASS)):
        storage = storage_for()
        assert isinstance(storage, ThumbStorage)
        assert storage.config.mogile_class == "thumb"


def test_storage_for_without_a_mogilefs_storage_says_so():
    only_memory = {"default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    with (
        override_settings(STORAGES=only_memory),
        pytest.raises(ImproperlyConfigured, match="No storage in STORAGES is a MogileFSStorage"),
    ):
        storage_for()


def test_deconstructs_to_a_stable_path_with_its_options():
    path, _args, kwargs = MogileFSStorage(mogile_class="avatar").deconstruct()
    assert path == "django_mogilefs.storage.MogileFSStorage"
    assert kwargs == {"mogile_class": "avatar"}
