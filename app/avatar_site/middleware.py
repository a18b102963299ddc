"""Middleware: refuse oversized request bodies early; answer the health check first.

RequestSizeLimitMiddleware refuses request bodies that are too big, before anything
reads them. Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not count uploaded files, and the
CSRF middleware parses the whole multipart body before a view can look at the
file's size. This middleware comes before it and answers ``413`` from the
``Content-Length`` header alone, so a 2 GB upload is never spooled to disk.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string

from .views import healthz


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.REQUEST_MAX_BYTES:
            # Answered from the header alone: the body is never read.
            return HttpResponse(
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
