"""``/metrics`` for Prometheus, on the app's own port only, never through the front Perlbal.

A middleware rather than a URL, so it answers before Django's host check (a
scraper asks for ``app:8000``, which is not a site host) and before sessions.

Who may scrape: a peer in ``MOGILEFS_METRICS_ALLOW_FROM`` (loopback and private
networks by default) whose request did not come through Perlbal. Perlbal adds
``X-Forwarded-For`` (and ``X-Proxy-Capabilities`` with reproxying on) to every
request it forwards and a client cannot remove them, so a request carrying either
gets the same 404 as an unknown page.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from .cluster import ClusterAdmin
from .cluster_metrics import ClusterCollector, Snapshot, cluster_registry

DEFAULT_ALLOW_FROM = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_PROXY_CAPABILITIES")

_lock = threading.Lock()
_cluster: CollectorRegistry | None = None


def _fetch() -> Snapshot:
    admin = ClusterAdmin(settings.MOGILEFS_TRACKERS, timeout=5.0)
    try:
        return admin.get_hosts(), admin.get_devices()
    finally:
        admin.close()


def _cluster_registry() -> CollectorRegistry:
    global _cluster
    with _lock:
        if _cluster is None:
            seconds = float(getattr(settings, "MOGILEFS_METRICS_CACHE_SECONDS", 15))
            _cluster = cluster_registry(ClusterCollector(_fetch, seconds))
        return _cluster


def _process_registry() -> CollectorRegistry:
    """Every gunicorn worker's counters when multiprocess mode is on, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def allowed(request: HttpRequest) -> bool:
    """A direct request from an allowed network (see the module docstring)."""
    if any(header in request.META for header in PROXY_HEADERS):
        return False
    networks = getattr(settings, "MOGILEFS_METRICS_ALLOW_FROM", DEFAULT_ALLOW_FROM)
    try:
        ip = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
        return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)
    except ValueError:
        return False


def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponseNotFound("Not found\n", content_type="text/plain")
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    body = generate_latest(_process_registry()) + generate_latest(_cluster_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Answers ``MOGILEFS_METRICS_PATH`` (``/metrics``; empty turns it off)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = getattr(settings, "MOGILEFS_METRICS_PATH", "/metrics")
        if not path or request.path_info != path:
            return self.get_response(request)
        return metrics(request)
