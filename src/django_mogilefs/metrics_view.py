"""``/metrics`` for Prometheus, on the app's own port only, never through the front Perlbal.

A middleware rather than a URL, so it answers before Django's host check (a
scraper asks for ``app:8000``, which is not a site host) and before sessions. Its
options are those of the first MogileFS storage in ``STORAGES``, whose cluster it
reports: ``metrics_path`` (``/metrics``; empty turns it off), ``metrics_allow_from``
and ``metrics_cache_seconds``. Needs the ``metrics`` extra
(``pip install django-mogilefs[metrics]``).

Who may scrape: a peer in ``metrics_allow_from`` (loopback and private networks by
default) whose request did not come through Perlbal. Perlbal adds
``X-Forwarded-For`` (and ``X-Proxy-Capabilities`` with reproxying on) to every
request it forwards and a client cannot remove them, so a request carrying either
gets the same 404 as an unknown page.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound

from .extras import require
from .storage import MogileFSStorage, first_alias, storage_for

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .cluster_metrics import ClusterCollector, Snapshot

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_PROXY_CAPABILITIES")

_lock = threading.Lock()
_cluster: tuple[ClusterCollector, CollectorRegistry] | None = None


def _fetch() -> Snapshot:
    admin = storage_for().cluster()  # the storage's own trackers and timeouts
    return admin.get_hosts(), admin.get_devices()


def _cluster_registry(backend: MogileFSStorage) -> CollectorRegistry:
    from .cluster_metrics import ClusterCollector, cluster_registry

    global _cluster
    with _lock:
        if _cluster is None:
            collector = ClusterCollector(_fetch)
            _cluster = (collector, cluster_registry(collector))
        _cluster[0].cache_seconds = backend.config.metrics_cache_seconds
        return _cluster[1]


def _process_registry() -> CollectorRegistry:
    """Every gunicorn worker's counters when multiprocess mode is on, else this process's."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def allowed(request: HttpRequest, backend: MogileFSStorage) -> bool:
    """A direct request from an allowed network (see the module docstring)."""
    if any(header in request.META for header in PROXY_HEADERS):
        return False
    try:
        ip = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    return any(ip in network for network in backend.config.metrics_allow_from)


def metrics(request: HttpRequest, backend: MogileFSStorage | None = None) -> HttpResponse:
    backend = backend or storage_for()
    if not allowed(request, backend):
        return HttpResponseNotFound("Not found\n", content_type="text/plain")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    exposition = require("prometheus_client.exposition", extra="metrics")
    body = exposition.generate_latest(_process_registry())
    body += exposition.generate_latest(_cluster_registry(backend))
    return HttpResponse(body, content_type=exposition.CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Answers the first MogileFS storage's ``metrics_path``; without one, nothing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        require("prometheus_client", extra="metrics")  # at start-up, not at the first scrape
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        alias = first_alias()
        if alias is not None:
            backend = storage_for(alias)
            path = backend.config.metrics_path
            if path and request.path_info == path:
                return metrics(request, backend)
        return self.get_response(request)
