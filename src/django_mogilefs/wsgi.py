"""Answer Perlbal's requests for stored files below Django's request cycle.

Wrap the site's WSGI application (``wsgi.py``)::

    from django.core.wsgi import get_wsgi_application
    from django_mogilefs.wsgi import ReproxyApplication

    application = ReproxyApplication(get_wsgi_application())

Every file that is not in Perlbal's reproxy cache costs Perlbal a request to the app,
and the answer is an empty response with ``X-REPROXY-URL``: the answer Perlbal replays
from its cache on a hit, with no Django at all. Building it takes the storage's
``locate`` and a few headers; Django's request cycle around it (request and response
objects, the middleware, the request_started/finished signals) would cost more than
that. WhiteNoise serves static files below Django for the same reason.

Only Perlbal's requests are answered here, as the serve view answers them
(:func:`~django_mogilefs.views.reproxy_answer`): a GET or HEAD under the storage's
``media_url`` offering ``reproxy-file``, from a peer in ``reproxy_from``, with a Host
in ``ALLOWED_HOSTS``. The answer is the file's paths, or the view's 503 when the
tracker cannot answer. Anything else (another path, a client that gets the bytes
streamed, a bad Host, a bad or unknown key) goes on to Django, whose serve view
answers it as always (an unknown key is looked up once more there, for its 404 page).
Like a reproxy-cache hit, the answer carries the file's headers, not
SecurityMiddleware's page headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import get_path_info
from django.http import Http404
from django.http.request import split_domain_port, validate_host

from . import metrics
from .storage import storage_for
from .views import reproxy_answer, through_perlbal

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
STATUS_LINES = {
    s.value: f"{s.value} {s.phrase}" for s in (HTTPStatus.OK, HTTPStatus.SERVICE_UNAVAILABLE)
}


class ReproxyApplication:
    """``application`` with Perlbal's reproxy requests answered before it."""

    def __init__(self, application: WSGIApp, storage: str | None = None) -> None:
        self.application = application
        self.storage = storage  # the STORAGES alias; None: the first MogileFS storage

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.application(environ, start_response)
        backend = storage_for(self.storage)
        name = served_name(backend.config.serve_prefix, get_path_info(environ))
        if name is None or not (_allowed_host(environ) and through_perlbal(environ, backend)):
            return self.application(environ, start_response)
        try:
            answer = reproxy_answer(backend, name)
        except Http404:
            return self.application(environ, start_response)
        metrics.SERVE_RESPONSES.labels(answer.kind).inc()
        start_response(STATUS_LINES[answer.status], [*answer.headers.items()])
        return [answer.body]


def served_name(prefix: str | None, path: str) -> str | None:
    """The file name in ``path`` under the serve prefix, or None for any other path."""
    if prefix and path.startswith(prefix) and len(path) > len(prefix):
        return path[len(prefix) :]
    return None


def _allowed_host(environ: dict[str, Any]) -> bool:
    """The Host header passes Django's ``ALLOWED_HOSTS`` check (``request.get_host()``).

    Perlbal keys its reproxy cache on it. Anything less plain (no Host header, a
    forwarded host) is left to Django's own check.
    """
    host = environ.get("HTTP_HOST")
    if not host or settings.USE_X_FORWARDED_HOST:
        return False
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # as get_host() does
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)
