"""Middleware: refuse oversized request bodies early; answer the health check first.

RequestSizeLimitMiddleware refuses request bodies that are too big, before anything
reads them. Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not count uploaded files, and the
CSRF middleware parses the whole multipart body before a view can look at the
file's size. This middleware comes before it and answers ``413`` from the
``Content-Length`` header alone, so a 2 GB upload is never spooled to disk.

Before answering, a body of moderate size is read and thrown away: a server that
closes a connection with unread data makes the kernel reset it, and a proxy in
front (Perlbal) then drops the 413 and the user sees a broken connection instead
of the message. Bodies past ``DRAIN_LIMIT`` are not worth reading; they get the
413 and a closed connection.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string

from .views import healthz

DRAIN_LIMIT = 64 * 1024 * 1024
DRAIN_CHUNK = 64 * 1024


def _drain(request: HttpRequest, length: int) -> None:
    stream = request.META.get("wsgi.input")
    left = length
    while stream is not None and left > 0:
        chunk = stream.read(min(DRAIN_CHUNK, left))
        if not chunk:
            break
        left -= len(chunk)


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
                _drain(request, length)
            response = HttpResponse(
                render_to_string(
                    "request_too_large.html",
                    {
                        "limit": filesizeformat(settings.AVATAR_MAX_BYTES),
                        "received": filesizeformat(length),
                    },
                    request=None,
                ),
                status=413,
            )
            return response
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
