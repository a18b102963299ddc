"""Middleware: refuse oversized request bodies early; answer the health check first.

RequestSizeLimitMiddleware answers ``413`` to a request whose ``Content-Length`` is
over ``REQUEST_MAX_BYTES``, judged from that header alone (an upload gets the upload
form again, with the limit: ``avatars.views.request_too_large``). Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not count uploaded files, and the CSRF
middleware parses the whole multipart body (writing big files to temporary files)
before a view can look at the file's size. That happens in its ``process_view``,
which Django runs only once every middleware's ``__call__`` has passed the request
on; this one answers before that: a refused body is never parsed, kept or written
anywhere by Django. It comes after the session and auth middleware, so its page is
the site's page for whoever is logged in.

It is not left unread, though, up to ``DRAIN_LIMIT`` (64 MB): the body is read in
64 KB chunks and thrown away (``views.drain``), then the 413 is sent. A server that
closes a connection with unread data makes the kernel reset it, and Perlbal, which streams
request bodies to the app as they arrive (no ``buffer_uploads``, see
perlbal/perlbal.conf), then drops the 413 and the user sees a broken connection
instead of the message. Reading the body holds this app thread for as long as the
client takes to send it. A body declared larger than ``DRAIN_LIMIT`` is not read: it
gets the 413 at once and a closed connection, which the client may see as a reset
instead of the answer.
"""

from __future__ import annotations

from collections.abc import Callable

from avatars.views import request_too_large
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .views import drain, healthz

DRAIN_LIMIT = 64 * 1024 * 1024


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.REQUEST_MAX_BYTES:
            # Judged from the header alone: the body is never parsed or stored.
            if length <= DRAIN_LIMIT:
                drain(request)
            return request_too_large(request, received=length)
        return self.get_response(request)


class HealthCheckMiddleware:
    """Answer ``/healthz`` before host validation, sessions or anything else.

    Container health checks call ``http://localhost:8000/healthz``, a Host that
    ``DJANGO_ALLOWED_HOSTS`` need not list; the answer is a constant, so skipping
    the host check reveals nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/healthz":
            return healthz(request)
        return self.get_response(request)
