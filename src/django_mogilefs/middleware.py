"""Serve stored files before the rest of the middleware chain and the URL resolver.

A file request needs none of what a page needs: no session, no CSRF token, no user,
no messages, no slash redirects. Every avatar that is not in Perlbal's reproxy cache
comes through Django, so that work is the cold path's cost: in a profile the
session, auth, messages and common middleware plus URL resolving took about as long
as the serve view itself. Put this middleware after ``SecurityMiddleware`` (HTTPS
redirects and its headers still apply) and before ``SessionMiddleware``::

    "django_mogilefs.middleware.ServeMiddleware",

It answers ``<MOGILEFS_MEDIA_URL><name>`` (a path on this site; an absolute URL
turns it off) with the serve view of the first MogileFS storage, as
``django_mogilefs.urls`` does, and passes every other request on. The Host header is
still checked against ``ALLOWED_HOSTS``: Perlbal keys its reproxy cache on it. The
query string is ignored, as the view does: the key alone names the file.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .views import serve


def serve_prefix() -> str | None:
    """The path under which files are served, or None when another host serves them."""
    media_url = getattr(settings, "MOGILEFS_MEDIA_URL", "/media/")
    parts = urlsplit(media_url)
    if parts.netloc or not media_url.startswith("/"):
        return None
    return media_url if media_url.endswith("/") else media_url + "/"


def served_name(prefix: str | None, path: str) -> str | None:
    """The file name in ``path`` under the serve prefix, or None for any other path."""
    if prefix and path.startswith(prefix) and len(path) > len(prefix):
        return path[len(prefix) :]
    return None


class ServeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = serve_prefix()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = served_name(self.prefix, request.path_info)
        if name is not None:
            request.get_host()  # DisallowedHost (400) for a Host not in ALLOWED_HOSTS
            return serve(request, name)
        return self.get_response(request)
