"""Serving stored files: Perlbal reproxy when Perlbal is in front, streaming otherwise.

Behind Perlbal (the request carries ``X-Proxy-Capabilities: reproxy-file``) the
answer is an empty response with ``X-REPROXY-URL`` listing every path, so Perlbal
fetches the bytes from a storage node and falls back to the next path on its own.
Any other client gets the bytes streamed by Django: storage URLs are internal and
are never sent to a client that did not come through Perlbal.

The view asks the storage where a file is (``locate``) and, when it streams, for the
bytes (``fetch``); the storage owns the path cache and the rule for stale paths.
:func:`reproxy_answer` is the answer to Perlbal, shared with the WSGI fast path
(:mod:`django_mogilefs.wsgi`), which gives it without Django's request cycle.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Mapping
from typing import Any, NamedTuple

from django.core.exceptions import SuspiciousFileOperation
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
from .storage import Location, MogileFSStorage, storage_for

logger = logging.getLogger(__name__)


class Answer(NamedTuple):
    """A complete answer without a body to stream: reproxy, or 503."""

    status: int
    headers: dict[str, str]
    body: bytes = b""

    @property
    def kind(self) -> str:
        """The ``kind`` label of ``mogilefs_serve_responses_total``."""
        return "reproxy" if "X-REPROXY-URL" in self.headers else str(self.status)

    def response(self) -> HttpResponse:
        return HttpResponse(self.body, status=self.status, headers=self.headers)


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
    if through_perlbal(request.META, backend):
        return reproxy_answer(backend, name).response()
    location = _locate(backend, name)
    if isinstance(location, Answer):
        return location.response()
    headers = file_headers(name, backend.config.cache_control)
    return _stream(request, backend, name, location, headers)


def reproxy_answer(backend: MogileFSStorage, name: str) -> Answer:
    """The answer to Perlbal for ``name``: its paths in ``X-REPROXY-URL``, or a 503.

    Raises ``Http404`` for an unknown or invalid key.
    """
    location = _locate(backend, name)
    if isinstance(location, Answer):
        return location
    headers = file_headers(name, backend.config.cache_control)
    return Answer(200, reproxy_headers(location, headers))


def _locate(backend: MogileFSStorage, name: str) -> Location | Answer:
    """``backend.locate(name)`` with at least one path, or the 503 to answer instead."""
    try:
        location = backend.locate(name)
    except (SuspiciousFileOperation, ValueError, UnknownKeyError) as exc:
        raise Http404("No such file") from exc
    except TrackerUnavailableError as exc:
        logger.error("Serving %r: %s", name, exc)
        return unavailable("The MogileFS tracker is unreachable; try again shortly.")
    except MogileFSError as exc:
        logger.error("Serving %r: %s", name, exc)
        return unavailable(f"MogileFS could not locate the file ({exc}).")
    if not location.paths:
        logger.error("Serving %r: the tracker knows no live copy", name)
        return unavailable("No copy of the file is available right now; try again shortly.")
    return location


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
    # A length lets the server keep Perlbal's connection open for the next request
    # (without one it must close an HTTP/1.0 answer).
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
        return unavailable("No storage node could serve the file; try again shortly.").response()
    length = upstream.headers.get("Content-Length")
    if length is not None:
        headers["Content-Length"] = length
    if head:
        upstream.close()
        return HttpResponse(headers=headers)
    return StreamingHttpResponse(iter_response(upstream), headers=headers)


def unavailable(message: str) -> Answer:
    """A 503 saying ``message``, to be tried again in a few seconds."""
    body = (message + "\n").encode()
    headers = {
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": str(len(body)),
        "Retry-After": "5",
    }
    return Answer(503, headers, body)
