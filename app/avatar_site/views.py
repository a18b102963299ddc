"""Site-wide views: the health check, the static file view, /favicon.ico, the 400 page."""

from __future__ import annotations

from pathlib import Path

from avatars.views import request_too_large
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.utils._os import safe_join
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django.views.static import serve

DRAIN_CHUNK = 64 * 1024


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for the load balancer and compose: no database, cache or tracker access."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


@require_safe
def static(request: HttpRequest, path: str) -> HttpResponse:
    """Static files for a gunicorn-only deployment (no nginx, no WhiteNoise).

    Files come from ``STATIC_ROOT`` when ``collectstatic`` has filled it, else
    from the apps' ``static/`` folders through the staticfiles finders. Django's
    ``serve`` view does the If-Modified-Since handling; both lookups refuse paths
    that leave their folder. The site has a handful of small files, so this is
    plenty; a bigger site would put a CDN or Perlbal's static service in front.
    """
    root = Path(settings.STATIC_ROOT) if settings.STATIC_ROOT else None
    if root and safe_join(root, path) and (root / path).is_file():
        response = serve(request, path, document_root=root)
    else:
        found = finders.find(path)
        if not found:
            raise Http404("No such static file")
        found = Path(found)
        response = serve(request, found.name, document_root=found.parent)
    response["Cache-Control"] = "public, max-age=3600"
    return response


FAVICON = "avatars/favicon.ico"


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers ask for on every site whatever the pages link."""
    return static(request, FAVICON)


def drain(request: HttpRequest) -> None:
    """Read and drop what is left of the body, up to its Content-Length.

    A server that closes a connection with unread data makes the kernel reset it, and
    Perlbal then drops the answer (see middleware.py).
    """
    while request.read(DRAIN_CHUNK):
        pass


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: form fields over DATA_UPLOAD_MAX_MEMORY_SIZE get the site's 413.

    Django raises RequestDataTooBig when the CSRF check first reads the form, before any
    view runs; its default answer is a bare "Bad Request (400)".
    """
    if isinstance(exception, RequestDataTooBig):
        drain(request)
        return request_too_large(request)
    return defaults.bad_request(request, exception)
