"""The serve view: reproxy behind Perlbal, streaming otherwise, clear errors."""

import pytest
from django.core.files.base import ContentFile
from django.http import Http404
from django.test import RequestFactory, override_settings
from django_mogilefs.views import serve

from .storage_stubs import LOCMEM, PERLBAL, SUBCLASS, FileCluster, storages_for, stored_file
from .stubs import closed_port, ok

pytestmark = pytest.mark.unit
STUB_CLUSTER = FileCluster  # the ``cluster`` fixture (conftest.py)


@pytest.fixture
def stored(cluster):
    with stored_file(cluster) as c:
        yield c


rf = RequestFactory()


def test_behind_perlbal_answers_with_every_path(stored):
    response = serve(rf.get("/media/avatars/u1.png", **PERLBAL), "avatars/u1.png")
    assert response.status_code == 200
    assert response["X-REPROXY-URL"].split(" ") == stored.paths
    assert response["Content-Type"] == "image/png"
    assert "max-age" in response["Cache-Control"]
    cache_for, _, replayed = response["X-REPROXY-CACHE-FOR"].partition("; ")
    assert int(cache_for) > 0
    assert set(replayed.split()) == {"Content-Type", "Cache-Control", "X-Content-Type-Options"}
    assert response.content == b""
    get_paths = next(a for c, a in stored.tracker.requests if c == "get_paths")
    assert get_paths["pathcount"] == "3" and get_paths["noverify"] == "1"


def test_serves_the_first_mogilefs_storage_a_subclass_too(cluster):
    with stored_file(cluster, backend=SUBCLASS):
        response = serve(rf.get("/m", **PERLBAL), "avatars/u1.png")
    assert response["X-REPROXY-URL"].split(" ") == cluster.paths


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


def test_a_spoofed_capabilities_header_from_an_untrusted_peer_gets_bytes_not_urls(stored):
    request = rf.get("/media/avatars/u1.png", REMOTE_ADDR="203.0.113.9", **PERLBAL)
    response = serve(request, "avatars/u1.png")
    assert "X-REPROXY-URL" not in response
    assert b"".join(response.streaming_content) == b"PNGDATA"


def test_reproxy_from_accepts_networks(cluster):
    trackers = [cluster.tracker.address]
    with override_settings(
        CACHES=LOCMEM, STORAGES=storages_for(trackers, reproxy_from="10.201.7.0/24, ::1")
    ):
        from django.core.files.storage import storages

        storages["media"].save("n.png", ContentFile(b"x"))
        ok_peer = rf.get("/m", REMOTE_ADDR="10.201.7.10", **PERLBAL)
        assert "X-REPROXY-URL" in serve(ok_peer, "n.png")
        other = rf.get("/m", REMOTE_ADDR="127.0.0.1", **PERLBAL)
        assert "X-REPROXY-URL" not in serve(other, "n.png")


def test_a_bad_reproxy_from_is_a_configuration_error(cluster):
    from django.core.exceptions import ImproperlyConfigured

    with (
        override_settings(
            CACHES=LOCMEM, STORAGES=storages_for([cluster.tracker.address], reproxy_from="nope")
        ),
        pytest.raises(ImproperlyConfigured, match="reproxy_from"),
    ):
        serve(rf.get("/m", **PERLBAL), "x.png")


def test_paths_of_a_file_still_replicating_are_not_cached_by_perlbal(cluster):
    """Right after a store a real tracker gives one path: Perlbal must not keep only that."""
    cluster.paths = cluster.paths[:1]
    base = cluster.answer

    def answer(cmd, args):
        if cmd == "file_info" and args.get("key") in cluster.existing:
            return ok(
                fid=7, key="a.png", domain="testdom", length=3, devcount=1, **{"class": "avatar"}
            )  # avatar wants 3 copies
        return base(cmd, args)

    cluster.tracker.answer = answer
    with override_settings(CACHES=LOCMEM, STORAGES=storages_for([cluster.tracker.address])):
        from django.core.files.storage import storages

        storages["media"].save("a.png", ContentFile(b"abc"))
        response = serve(rf.get("/m", **PERLBAL), "a.png")
        assert response["X-REPROXY-URL"] == cluster.paths[0]
        assert "X-REPROXY-CACHE-FOR" not in response
        assert storages["media"].locate("a.png").complete is False


def test_no_live_copy_is_503_not_an_empty_200(cluster):
    cluster.paths = []
    with override_settings(CACHES=LOCMEM, STORAGES=storages_for([cluster.tracker.address])):
        from django.core.files.storage import storages

        storages["media"].save("gone.png", ContentFile(b"abc"))
        for request in (rf.get("/m", **PERLBAL), rf.get("/m")):
            response = serve(request, "gone.png")
            assert response.status_code == 503
            assert "max-age" not in response.get("Cache-Control", "")


def test_head_without_perlbal_asks_the_node_with_head(stored):
    serve(rf.head("/media/avatars/u1.png"), "avatars/u1.png")
    assert stored.node.log[-1][0] == "HEAD"


@pytest.mark.parametrize(
    ("name", "inline"),
    [
        ("a.png", True),
        ("a.jpg", True),
        ("a.txt", True),
        ("a.svg", False),
        ("a.html", False),
        ("a.bin", False),
        ("noext", False),
    ],
)
def test_only_inert_types_are_served_inline(stored, name, inline):
    storage_key = name
    stored.existing[storage_key] = b"x"
    response = serve(rf.get("/m", **PERLBAL), storage_key)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert ("Content-Disposition" not in response) is inline
