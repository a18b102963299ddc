"""ReproxyApplication: Perlbal's plain reproxy requests answered below Django, the rest
left to Django exactly as before."""

from __future__ import annotations

import io

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django_mogilefs.exceptions import TrackerUnavailableError
from django_mogilefs.wsgi import ReproxyApplication

from .test_serve_view import stored_file
from .test_storage import FileCluster

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

HOST = "avatars.example"
KEY = "avatars/u1.png"


class Django:
    """Django's WSGI handler, counting the requests that reach it."""

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
        with stored_file(
            cluster,
            MIDDLEWARE=["django_mogilefs.middleware.ServeMiddleware"],
            ALLOWED_HOSTS=[HOST],
            MOGILEFS_MEDIA_URL="/media/",
        ):
            yield cluster
    finally:
        cluster.close()


def call(
    app,
    path: str,
    *,
    method: str = "GET",
    host: str = HOST,
    perlbal: bool = True,
    remote: str = "127.0.0.1",
):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
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


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"perlbal": False}, 200),  # a browser straight at the app: Django streams
        ({"remote": "203.0.113.7"}, 200),  # offers reproxying but is not a trusted peer
        ({"method": "POST"}, 405),
        ({"host": "evil.example"}, 400),  # DisallowedHost, from Django
        ({"path": "/media/avatars/none.png"}, 404),
        ({"path": "/media/../settings.py"}, 404),
        ({"path": "/media/"}, 404),
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


def test_a_failed_lookup_is_handed_to_django_not_repeated(stored, monkeypatch):
    from django.core.files.storage import storages

    backend = storages["media"]
    calls = []

    def locate(name):
        calls.append(name)
        raise TrackerUnavailableError("no tracker answered")

    monkeypatch.setattr(backend, "locate", locate)
    django = Django()
    status, _, body = call(ReproxyApplication(django), "/media/" + KEY)
    assert (status, django.calls, calls) == (503, 1, [KEY])
    assert b"tracker is unreachable" in body
