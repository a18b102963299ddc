"""ReproxyApplication, the one fast path for stored files: Perlbal's reproxy requests
answered below Django, the rest left to Django (and its URLconf's serve view)."""

from __future__ import annotations

import io

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django_mogilefs.exceptions import TrackerUnavailableError
from django_mogilefs.wsgi import ReproxyApplication

from .storage_stubs import LOCMEM, SUBCLASS, FileCluster, options_only, storages_for, stored_file
from .stubs import closed_port

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

HOST = "avatars.example"
KEY = "avatars/u1.png"


class Django:
    """Django's WSGI handler (the site's middleware and URLconf), counting its requests."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.handler(environ, start_response)


@pytest.fixture
def stored():
    cluster = FileCluster()
    try:
        with stored_file(cluster, ALLOWED_HOSTS=[HOST]):
            yield cluster
    finally:
        cluster.close()


def environ_for(
    path: str,
    *,
    method: str = "GET",
    host: str = HOST,
    perlbal: bool = True,
    remote: str = "127.0.0.1",
    query: str = "",
) -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote,
        "HTTP_HOST": host,
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
    }
    if perlbal:
        environ["HTTP_X_PROXY_CAPABILITIES"] = "reproxy-file"
    return environ


def call(app, path: str, **kwargs):
    environ = environ_for(path, **kwargs)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    chunks = app(environ, start_response)
    body = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return answer["status"], answer["headers"], body


FILE_HEADERS = (
    "Content-Type",
    "Cache-Control",
    "X-Content-Type-Options",
    "Content-Length",
    "X-REPROXY-URL",
    "X-REPROXY-CACHE-FOR",
)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_answers_perlbal_without_django_as_the_serve_view_does(stored, method):
    django = Django()
    status, headers, body = call(ReproxyApplication(django), "/media/" + KEY, method=method)
    assert (status, body, django.calls) == (200, b"", 0)
    assert headers["X-REPROXY-URL"].split(" ") == stored.paths
    through_django = call(django, "/media/" + KEY, method=method)
    assert through_django[0] == 200 and django.calls == 1
    assert {h: headers.get(h) for h in FILE_HEADERS} == {
        h: through_django[1].get(h) for h in FILE_HEADERS
    }


def test_the_query_string_is_ignored(stored):
    app = ReproxyApplication(Django())
    plain = call(app, "/media/" + KEY)[1]
    queried = call(app, "/media/" + KEY, query="v=2&cachebust=1")[1]
    assert queried["X-REPROXY-URL"] == plain["X-REPROXY-URL"]
    assert queried["X-REPROXY-CACHE-FOR"] == plain["X-REPROXY-CACHE-FOR"]


def test_the_storage_is_found_when_it_is_a_subclass():
    cluster = FileCluster()
    try:
        with stored_file(cluster, backend=SUBCLASS, ALLOWED_HOSTS=[HOST]):
            django = Django()
            status, headers, _ = call(ReproxyApplication(django), "/media/" + KEY)
    finally:
        cluster.close()
    assert (status, django.calls) == (200, 0)
    assert headers["X-REPROXY-URL"].split(" ") == cluster.paths


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"perlbal": False}, 200),  # a browser straight at the app: Django streams
        ({"remote": "203.0.113.7"}, 200),  # offers reproxying but is not a trusted peer
        ({"method": "POST"}, 403),  # CSRF, before the view (which would say 405)
        ({"host": "evil.example"}, 400),  # DisallowedHost, from Django
        ({"path": "/media/avatars/none.png"}, 404),
        ({"path": "/media/../settings.py"}, 404),
        ({"path": "/media/"}, 404),
        ({"path": "/medias/" + KEY}, 404),
        ({"path": "/other"}, 404),
    ],
)
def test_everything_else_is_left_to_django(stored, request_kwargs, status):
    django = Django()
    kwargs = {"path": "/media/" + KEY, **request_kwargs}
    got_status, headers, body = call(ReproxyApplication(django), **kwargs)
    assert (got_status, django.calls) == (status, 1)
    assert "X-REPROXY-URL" not in headers
    if status == 200:
        assert body == b"PNGDATA"  # streamed: storage URLs never reach such a client


def test_a_host_not_allowed_is_refused_before_the_tracker_is_asked(stored):
    # Perlbal keys its reproxy cache on the Host header: only allowed hosts get an entry.
    app = ReproxyApplication(Django())
    assert call(app, "/media/" + KEY, host=f"{HOST}:1234")[0] == 200
    asked = len(stored.tracker.requests)
    status, headers, _ = call(app, "/media/avatars/u2.png", host="evil.example")
    assert status == 400 and "X-REPROXY-URL" not in headers
    assert len(stored.tracker.requests) == asked


def test_an_absolute_media_url_leaves_every_request_to_django():
    configured = storages_for([closed_port()], media_url="https://cdn.example/media/")
    with options_only(
        STORAGES=configured, CACHES=LOCMEM, ALLOWED_HOSTS=[HOST], ROOT_URLCONF="unit.media_urls"
    ):
        django = Django()
        call(ReproxyApplication(django), "/media/" + KEY)
    assert django.calls == 1


def test_a_tracker_that_cannot_answer_is_a_503_here_asked_once(stored, monkeypatch):
    from django.core.files.storage import storages

    calls = []

    def locate(name):
        calls.append(name)
        raise TrackerUnavailableError("no tracker answered")

    monkeypatch.setattr(storages["media"], "locate", locate)
    django = Django()
    environ = environ_for("/media/" + KEY)
    before = set(environ)
    answer = {}
    body = b"".join(
        ReproxyApplication(django)(environ, lambda status, headers: answer.update(s=status))
    )
    assert (answer["s"], django.calls, calls) == ("503 Service Unavailable", 0, [KEY])
    assert b"tracker is unreachable" in body
    assert set(environ) == before  # nothing handed on through the environ
