"""Serving stored files: Perlbal reproxy when Perlbal is in front, streaming otherwise.

Behind Perlbal (the request carries ``X-Proxy-Capabilities: reproxy-file``) the
answer is an empty response with ``X-REPROXY-URL`` listing every path, so Perlbal
fetches the bytes from a storage node and falls back to the next path on its own.
Any other client gets the bytes streamed by Django: storage URLs are internal and
are never sent to a client that did not come through Perlbal.

The view asks the storage where a file is (``locate``) and, when it streams, for the
bytes (``fetch``); the storage owns the path cache and the rule for stale paths.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.storage import storages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)

from . import metrics
from .exceptions import MogileFSError, TrackerUnavailableError, UnknownKeyError
from .nodes import iter_response
from .storage import Location, MogileFSStorage

logger = logging.getLogger(__name__)

BACKEND = "django_mogilefs.storage.MogileFSStorage"
# The environ key under which ReproxyApplication leaves (name, error) of a failed locate.
LOCATE_FAILED = "django_mogilefs.locate_failed"


def serve(request: HttpRequest, name: str, storage: str | None = None) -> HttpResponse:
    """GET or HEAD the file ``name`` of the MogileFS storage alias ``storage``.

    404 for an unknown or invalid key, 503 when the tracker or every storage node is
    unreachable (with a message saying which).
    """
    try:
        response = _serve(request, name, storage)
    except Http404:
        metrics.SERVE_RESPONSES.labels("404").inc()
        raise
    metrics.SERVE_RESPONSES.labels(_kind(response)).inc()
    return response


def _kind(response: HttpResponse) -> str:
    """The ``kind`` label of a serve answer: reproxy, stream, or the status code."""
    if "X-REPROXY-URL" in response:
        return "reproxy"
    return "stream" if response.status_code == 200 else str(response.status_code)


def _serve(request: HttpRequest, name: str, storage: str | None) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    backend = storage_for(storage)
    try:
        location = _locate(request, backend, name)
    except (SuspiciousFileOperation, ValueError, UnknownKeyError) as exc:
        raise Http404("No such file") from exc
    except TrackerUnavailableError as exc:
        logger.error("Serving %r: %s", name, exc)
        return _unavailable("The MogileFS tracker is unreachable; try again shortly.")
    except MogileFSError as exc:
        logger.error("Serving %r: %s", name, exc)
        return _unavailable(f"MogileFS could not locate the file ({exc}).")
    if not location.paths:
        logger.error("Serving %r: the tracker knows no live copy", name)
        return _unavailable("No copy of the file is available right now; try again shortly.")

    headers = file_headers(name, backend.cache_control)
    if through_perlbal(request.META, backend):
        return HttpResponse(headers=reproxy_headers(location, headers))
    return _stream(request, backend, name, location, headers)


def _locate(request: HttpRequest, backend: MogileFSStorage, name: str) -> Location:
    """``backend.locate(name)``, unless ``ReproxyApplication`` already tried and failed:
    then its error again, so that a tracker that cannot answer is not asked twice."""
    failed = request.META.pop(LOCATE_FAILED, None)
    if failed is not None and failed[0] == name:
        raise failed[1]
    return backend.locate(name)


def file_headers(name: str, cache_control: str) -> dict[str, str]:
    """Type from the key's extension; anything a browser could run is a download."""
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {
        "Content-Type": content_type,
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
    }
    if not _safe_inline(content_type):
        headers["Content-Disposition"] = "attachment"
    return headers


def _safe_inline(content_type: str) -> bool:
    major, _, minor = content_type.partition("/")
    if major == "image":
        return minor != "svg+xml"  # SVG can carry scripts
    return major in ("audio", "video") or content_type == "text/plain"


def through_perlbal(environ: Mapping[str, Any], backend: MogileFSStorage) -> bool:
    """Perlbal offers reproxying, and the request really comes from a trusted proxy.

    ``environ`` is the WSGI environ (``request.META``). Any client can send
    ``X-Proxy-Capabilities``; only a peer in ``reproxy_from`` (``MOGILEFS_REPROXY_FROM``)
    is believed, so storage URLs never leak to others.
    """
    offered = "reproxy-file" in environ.get("HTTP_X_PROXY_CAPABILITIES", "")
    return offered and backend.may_reproxy(environ.get("REMOTE_ADDR"))


def reproxy_headers(location: Location, headers: dict[str, str]) -> dict[str, str]:
    """The headers of the empty answer that sends Perlbal to ``location``'s paths."""
    # A length lets gunicorn keep Perlbal's connection open for the next request (without
    # one it must close an HTTP/1.0 answer, and CommonMiddleware, which adds it to pages,
    # is skipped by ServeMiddleware).
    answer = {**headers, "Content-Length": "0", "X-REPROXY-URL": " ".join(location.paths)}
    if location.cache_for > 0:
        # Perlbal replays only the headers named here on a reproxy-cache hit.
        names = " ".join(h for h in headers if h != "Content-Length")
        answer["X-REPROXY-CACHE-FOR"] = f"{location.cache_for}; {names}"
    return answer


def _stream(
    request: HttpRequest,
    backend: MogileFSStorage,
    name: str,
    location: Location,
    headers: dict[str, str],
) -> HttpResponse:
    head = request.method == "HEAD"
    try:
        upstream = backend.fetch(name, location, head=head)
    except UnknownKeyError as exc:
        raise Http404("No such file") from exc
    except MogileFSError as exc:
        logger.error("Serving %r: %s", name, exc)
        return _unavailable("No storage node could serve the file; try again shortly.")
    length = upstream.headers.get("Content-Length")
    if length is not None:
        headers["Content-Length"] = length
    if head:
        upstream.close()
        return HttpResponse(headers=headers)
    return StreamingHttpResponse(iter_response(upstream), headers=headers)


def _unavailable(message: str) -> HttpResponse:
    return HttpResponse(
        message + "\n",
        status=503,
        content_type="text/plain; charset=utf-8",
        headers={"Retry-After": "5"},
    )


def storage_for(alias: str | None) -> MogileFSStorage:
    """The named storage, or the first MogileFS one in ``STORAGES``."""
    if alias is None:
        alias = next(
            (a for a, conf in settings.STORAGES.items() if conf.get("BACKEND") == BACKEND), None
        )
        if alias is None:
            raise ImproperlyConfigured(f"No storage in STORAGES uses {BACKEND}")
    backend = storages[alias]
    if not isinstance(backend, MogileFSStorage):
        raise ImproperlyConfigured(f"STORAGES[{alias!r}] is not a MogileFSStorage")
    return backend
