"""Serving stored files: Perlbal reproxy when Perlbal is in front, streaming otherwise.

Behind Perlbal (the request carries ``X-Proxy-Capabilities: reproxy-file``) the
answer is an empty response with ``X-REPROXY-URL`` listing every path, so Perlbal
fetches the bytes from a storage node and falls back to the next path on its own.
Any other client gets the bytes streamed by Django: storage URLs are internal and
are never sent to a client that did not come through Perlbal.
"""

from __future__ import annotations

import logging
import mimetypes

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

from .exceptions import MogileFSError, StorageNodeError, TrackerUnavailableError, UnknownKeyError
from .nodes import iter_response
from .storage import MogileFSStorage

logger = logging.getLogger(__name__)

BACKEND = "django_mogilefs.storage.MogileFSStorage"


def serve(request: HttpRequest, name: str, storage: str | None = None) -> HttpResponse:
    """GET or HEAD the file ``name`` of the MogileFS storage alias ``storage``.

    404 for an unknown or invalid key, 503 when the tracker or every storage node is
    unreachable (with a message saying which).
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    backend = _storage(storage)
    try:
        backend._key(name)
        paths = backend.paths(name)
    except (SuspiciousFileOperation, ValueError, UnknownKeyError) as exc:
        raise Http404("No such file") from exc
    except TrackerUnavailableError as exc:
        logger.error("Serving %r: %s", name, exc)
        return _unavailable("The MogileFS tracker is unreachable; try again shortly.")
    except MogileFSError as exc:
        logger.error("Serving %r: %s", name, exc)
        return _unavailable(f"MogileFS could not locate the file ({exc}).")

    headers = {
        "Content-Type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "Cache-Control": backend.config["cache_control"],
    }
    if backend.config["serve_with_perlbal"] and _through_perlbal(request):
        return _reproxy(paths, headers, int(backend.config["reproxy_cache_for"]))
    return _stream(request, backend, name, paths, headers)


def _through_perlbal(request: HttpRequest) -> bool:
    return "reproxy-file" in request.headers.get("X-Proxy-Capabilities", "")


def _reproxy(paths: list[str], headers: dict[str, str], cache_for: int) -> HttpResponse:
    response = HttpResponse(headers=headers)
    response["X-REPROXY-URL"] = " ".join(paths)
    if cache_for > 0:
        # Perlbal replays only the headers named here on a reproxy-cache hit.
        response["X-REPROXY-CACHE-FOR"] = f"{cache_for}; Content-Type Cache-Control"
    return response


def _stream(
    request: HttpRequest,
    backend: MogileFSStorage,
    name: str,
    paths: list[str],
    headers: dict[str, str],
) -> HttpResponse:
    try:
        upstream = backend.client.open_stream(paths)
    except StorageNodeError:
        # Cached paths can be stale (a replica moved, a node died): ask the tracker once more.
        backend.forget_paths(name)
        try:
            upstream = backend.client.open_stream(backend.paths(name))
        except UnknownKeyError as exc:
            raise Http404("No such file") from exc
        except MogileFSError as exc:
            logger.error("Serving %r: %s", name, exc)
            return _unavailable("No storage node could serve the file; try again shortly.")
    length = upstream.headers.get("Content-Length")
    if length is not None:
        headers["Content-Length"] = length
    if request.method == "HEAD":
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


def _storage(alias: str | None) -> MogileFSStorage:
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
