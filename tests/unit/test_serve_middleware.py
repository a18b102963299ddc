"""ServeMiddleware: stored files answered before the rest of the chain, Host still checked."""

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings

from .test_serve_view import PERLBAL, stored_file
from .test_storage import FileCluster

pytestmark = pytest.mark.unit

SERVE_FIRST = ["django_mogilefs.middleware.ServeMiddleware", "unit.test_serve_middleware.Rest"]


class Rest:
    """Stands for the session, auth and messages middleware: 418 marks who got here."""

    def __init__(self, get_response: object) -> None:
        pass

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(request.path_info, status=418)


@pytest.fixture
def stored():
    cluster = FileCluster()
    try:
        with stored_file(cluster, MIDDLEWARE=SERVE_FIRST, ALLOWED_HOSTS=["avatars.example"]):
            yield cluster
    finally:
        cluster.close()


def get(path: str, host: str = "avatars.example", **headers: str) -> HttpResponse:
    return Client(HTTP_HOST=host).get(path, **headers)


def test_a_file_is_served_without_the_rest_of_the_chain(stored):
    response = get("/media/avatars/u1.png", **PERLBAL)
    assert response.status_code == 200
    assert response["X-REPROXY-URL"].split(" ") == stored.paths
    assert "Set-Cookie" not in response and "Vary" not in response


def test_the_query_string_is_ignored(stored):
    plain = get("/media/avatars/u1.png", **PERLBAL)
    queried = get("/media/avatars/u1.png?v=2&cachebust=1", **PERLBAL)
    assert queried.status_code == 200
    assert queried["X-REPROXY-URL"] == plain["X-REPROXY-URL"]
    assert queried["X-REPROXY-CACHE-FOR"] == plain["X-REPROXY-CACHE-FOR"]


def test_an_unknown_key_is_a_404(stored):
    assert get("/media/avatars/nope.png", **PERLBAL).status_code == 404


def test_a_host_not_allowed_is_refused_before_the_tracker_is_asked(stored):
    # Perlbal keys its reproxy cache on the Host header: only allowed hosts get an entry.
    assert get("/media/avatars/u1.png", host="avatars.example:1234", **PERLBAL).status_code == 200
    asked = len(stored.tracker.requests)
    response = get("/media/avatars/u2.png", host="evil.example", **PERLBAL)
    assert response.status_code == 400
    assert "X-REPROXY-URL" not in response
    assert len(stored.tracker.requests) == asked


@pytest.mark.parametrize("path", ["/media/", "/medias/avatars/u1.png", "/", "/u/alice/"])
def test_other_paths_are_passed_on(stored, path):
    response = get(path)
    assert (response.status_code, response.content.decode()) == (418, path)


def test_an_absolute_media_url_turns_it_off(stored):
    with override_settings(MOGILEFS_MEDIA_URL="https://cdn.example/media/"):
        assert get("/media/avatars/u1.png", **PERLBAL).status_code == 418
