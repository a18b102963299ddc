"""The serve view: reproxy behind Perlbal, streaming otherwise, clear errors."""

import pytest
from django.core.files.base import ContentFile
from django.http import Http404
from django.test import RequestFactory, override_settings
from django_mogilefs.views import serve

from .stubs import closed_port
from .test_storage import LOCMEM, FileCluster

pytestmark = pytest.mark.unit


@pytest.fixture
def cluster():
    c = FileCluster()
    yield c
    c.close()


def storages_for(trackers, **options):
    return {
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "media": {
            "BACKEND": "django_mogilefs.storage.MogileFSStorage",
            "OPTIONS": {"trackers": trackers, "domain": "testdom", **options},
        },
    }


@pytest.fixture
def stored(cluster):
    with override_settings(CACHES=LOCMEM, STORAGES=storages_for([cluster.tracker.address])):
        from django.core.files.storage import storages

        storages["media"].save("avatars/u1.png", ContentFile(b"PNGDATA"))
        for d in cluster.dests:
            cluster.node.files[d] = b"PNGDATA"
        yield cluster


rf = RequestFactory()
PERLBAL = {"HTTP_X_PROXY_CAPABILITIES": "reproxy-file"}


def test_behind_perlbal_answers_with_every_path(stored):
    response = serve(rf.get("/media/avatars/u1.png", **PERLBAL), "avatars/u1.png")
    assert response.status_code == 200
    assert response["X-REPROXY-URL"].split(" ") == stored.paths
    assert response["Content-Type"] == "image/png"
    assert "max-age" in response["Cache-Control"]
    assert response["X-REPROXY-CACHE-FOR"].endswith("; Content-Type Cache-Control")
    assert response.content == b""
    get_paths = next(a for c, a in stored.tracker.requests if c == "get_paths")
    assert get_paths["pathcount"] == "3" and get_paths["noverify"] == "1"


def test_without_perlbal_streams_and_never_leaks_storage_urls(stored):
    response = serve(rf.get("/media/avatars/u1.png"), "avatars/u1.png")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"PNGDATA"
    assert response["Content-Length"] == "7"
    assert response["Content-Type"] == "image/png"
    assert not any(stored.node.base in str(v) for v in response.headers.values())


def test_head_without_perlbal_has_length_and_no_body(stored):
    response = serve(rf.head("/media/avatars/u1.png"), "avatars/u1.png")
    assert response.status_code == 200
    assert response["Content-Length"] == "7"
    assert response.content == b""


def test_serve_with_perlbal_off_streams_even_behind_perlbal(cluster):
    with override_settings(
        CACHES=LOCMEM, STORAGES=storages_for([cluster.tracker.address], serve_with_perlbal=False)
    ):
        cluster.existing["k.txt"] = b"abc"
        cluster.node.files[cluster.dests[0]] = b"abc"
        response = serve(rf.get("/media/k.txt", **PERLBAL), "k.txt")
        assert "X-REPROXY-URL" not in response
        assert b"".join(response.streaming_content) == b"abc"


def test_stale_cached_paths_are_refreshed_once(stored):
    serve(rf.get("/m", **PERLBAL), "avatars/u1.png")  # caches the paths
    stored.node.files.clear()
    stored.dests = ["/dev3/0/000/000/0000000009.fid"]
    stored.paths = [stored.node.url(stored.dests[0])]
    stored.node.files[stored.dests[0]] = b"MOVED"
    response = serve(rf.get("/m"), "avatars/u1.png")
    assert b"".join(response.streaming_content) == b"MOVED"


def test_unknown_key_is_404(stored):
    with pytest.raises(Http404):
        serve(rf.get("/media/nope.png"), "nope.png")


@pytest.mark.parametrize("name", ["../secret", "/abs"])
def test_invalid_names_are_404(stored, name):
    with pytest.raises(Http404):
        serve(rf.get("/media/x"), name)


def test_post_is_405(stored):
    assert serve(rf.post("/media/avatars/u1.png"), "avatars/u1.png").status_code == 405


def test_tracker_down_is_503_with_a_clear_message():
    with override_settings(CACHES=LOCMEM, STORAGES=storages_for([closed_port()])):
        response = serve(rf.get("/media/a.png", **PERLBAL), "a.png")
    assert response.status_code == 503
    assert b"tracker is unreachable" in response.content


def test_every_storage_node_down_is_503(stored):
    stored.node.files.clear()
    response = serve(rf.get("/media/avatars/u1.png"), "avatars/u1.png")
    assert response.status_code == 503
    assert b"No storage node" in response.content
