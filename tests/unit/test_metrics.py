"""Prometheus metrics: who may scrape, the tracker cache, and what gets counted."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings
from django_mogilefs import cluster_metrics, metrics, metrics_view
from django_mogilefs.cluster import DeviceInfo, HostInfo
from django_mogilefs.exceptions import TrackerUnavailableError
from django_mogilefs.tracker import TrackerPool
from prometheus_client import generate_latest

from .storage_stubs import options_only, storages_for
from .stubs import StubTracker, closed_port, ok

pytestmark = pytest.mark.unit

HOSTS = [HostInfo(1, "mogstored1", "127.0.0.1", 7500, "alive")]
DEVICES = [DeviceInfo(1, 1, "alive", "writeable", 100, 1000, 10, 990)]


def static() -> tuple[list[HostInfo], list[DeviceInfo]]:
    return HOSTS, DEVICES


def scrape(collector: cluster_metrics.ClusterCollector) -> str:
    return generate_latest(cluster_metrics.cluster_registry(collector)).decode()


def value(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_device_space_and_states_come_from_the_tracker() -> None:
    registry = cluster_metrics.cluster_registry(
        cluster_metrics.ClusterCollector(lambda: (HOSTS, DEVICES))
    )
    dev = {"devid": "1", "host": "mogstored1"}
    assert registry.get_sample_value("mogilefs_device_free_bytes", dev) == 990 * 1024**2
    assert registry.get_sample_value("mogilefs_device_total_bytes", dev) == 1000 * 1024**2
    observed = "mogilefs_device_observed_state"
    assert registry.get_sample_value(observed, {**dev, "state": "writeable"}) == 1
    assert registry.get_sample_value(observed, {**dev, "state": "unreachable"}) == 0
    assert registry.get_sample_value("mogilefs_device_status", {**dev, "status": "alive"}) == 1
    assert registry.get_sample_value("mogilefs_tracker_up", {}) == 1


def test_scrapes_reuse_the_tracker_answers_for_a_while() -> None:
    calls = []

    def fetch():
        calls.append(1)
        return HOSTS, DEVICES

    cached = cluster_metrics.ClusterCollector(fetch, cache_seconds=60)
    for _ in range(5):
        scrape(cached)
    assert len(calls) == 1
    uncached = cluster_metrics.ClusterCollector(fetch, cache_seconds=0)
    scrape(uncached)
    scrape(uncached)
    assert len(calls) == 3


def test_a_tracker_outage_keeps_the_last_figures_and_says_so() -> None:
    answers = [(HOSTS, DEVICES)]

    def fetch():
        if not answers:
            raise TrackerUnavailableError("down")
        return answers.pop()

    collector = cluster_metrics.ClusterCollector(fetch, cache_seconds=0)
    scrape(collector)
    text = scrape(collector)
    assert "mogilefs_tracker_up 0.0" in text and "mogilefs_device_total_bytes{" in text


def test_tracker_round_trips_and_errors_are_counted_by_command() -> None:
    tracker = StubTracker(
        lambda c, a: ok(fid=1) if c == "file_info" else b"ERR unknown_key unknown_key\r\n"
    )
    pool = TrackerPool(tracker.address)
    before = value("mogilefs_tracker_request_seconds_count", command="file_info")
    errors = value("mogilefs_tracker_errors_total", command="delete", error="unknown_key")
    try:
        pool.request("file_info", {"domain": "d", "key": "k"})
        with pytest.raises(Exception, match="unknown_key"):
            pool.request("delete", {"domain": "d", "key": "k"})
    finally:
        pool.close()
        tracker.close()
    assert value("mogilefs_tracker_request_seconds_count", command="file_info") == before + 1
    assert (
        value("mogilefs_tracker_errors_total", command="delete", error="unknown_key") == errors + 1
    )
    down = value("mogilefs_tracker_errors_total", command="noop", error="unavailable")
    with pytest.raises(TrackerUnavailableError):
        TrackerPool(closed_port(), dead_timeout=0).request("noop")
    assert value("mogilefs_tracker_errors_total", command="noop", error="unavailable") == down + 1


@pytest.fixture
def scrapeable(monkeypatch):
    registry = cluster_metrics.cluster_registry(
        cluster_metrics.ClusterCollector(lambda: (HOSTS, DEVICES))
    )
    monkeypatch.setattr(metrics_view, "_cluster_registry", lambda backend: registry)


@pytest.mark.parametrize(
    ("remote", "headers", "status"),
    [
        ("127.0.0.1", {}, 200),
        ("10.201.7.20", {}, 200),
        ("::1", {}, 200),
        ("203.0.113.9", {}, 404),  # not an internal network
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}, 404),  # through Perlbal
        ("10.201.7.10", {"HTTP_X_PROXY_CAPABILITIES": "reproxy-file"}, 404),
    ],
)
def test_only_direct_scrapes_from_internal_networks_are_answered(
    scrapeable, remote, headers, status
) -> None:
    request = RequestFactory().get("/metrics", REMOTE_ADDR=remote, **headers)
    response = metrics_view.metrics(request)
    assert response.status_code == status
    assert (b"mogilefs_device_total_bytes" in response.content) == (status == 200)


def test_the_middleware_answers_before_the_host_check(scrapeable, client) -> None:
    response = client.get("/metrics", HTTP_HOST="app:8000")
    assert response.status_code == 200
    assert b"mogilefs_tracker_up 1.0" in response.content
    with override_settings(MOGILEFS_METRICS_PATH=""):
        assert client.get("/metrics", HTTP_HOST="localhost").status_code == 404


def test_upload_outcomes_are_named() -> None:
    from django_mogilefs.exceptions import ChecksumMismatchError, StorageNodeError

    assert metrics.upload_outcome(None) == "stored"
    assert metrics.upload_outcome(ChecksumMismatchError("checksum_mismatch")) == "checksum_mismatch"
    assert metrics.upload_outcome(TrackerUnavailableError("x")) == "tracker_unavailable"
    assert metrics.upload_outcome(StorageNodeError("x")) == "storage_node_error"


def cluster_tracker(*_: object) -> StubTracker:
    """A tracker with one host and one device: what get_hosts/get_devices answer."""

    def answer(cmd, args):
        if cmd == "get_hosts":
            return ok(
                hosts=1, host1_hostid=1, host1_hostname="node-of-options", host1_status="alive"
            )
        if cmd == "get_devices":
            return ok(devices=1, dev1_devid=4, dev1_hostid=1, dev1_status="alive", dev1_mb_total=7)
        return b"ERR unknown_command unknown\r\n"

    return StubTracker(answer)


def test_the_cluster_is_the_storages_even_configured_through_options_only(client) -> None:
    tracker = cluster_tracker()
    try:
        with options_only(
            STORAGES=storages_for([tracker.address], metrics_allow_from=["127.0.0.1"])
        ):
            metrics_view._cluster = None  # a fresh collector, no cached figures
            body = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
            refused = client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code
    finally:
        metrics_view._cluster = None
        tracker.close()
    assert 'mogilefs_device_total_bytes{devid="4",host="node-of-options"}' in body
    assert refused == 404  # a private network, but not in this storage's metrics_allow_from


def test_the_path_is_the_storages_option(scrapeable, client) -> None:
    with options_only(STORAGES=storages_for(["127.0.0.1:7001"], metrics_path="/internal/m")):
        assert client.get("/internal/m").status_code == 200
        assert client.get("/metrics").status_code == 404


def test_without_a_mogilefs_storage_there_is_no_metrics_path(client) -> None:
    memory = {"BACKEND": "django.core.files.storage.InMemoryStorage"}
    with override_settings(STORAGES={"default": memory, "staticfiles": memory}):
        assert client.get("/metrics", HTTP_HOST="localhost").status_code == 404


def test_without_prometheus_client_the_middleware_names_the_extra(monkeypatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setitem(__import__("sys").modules, "prometheus_client", None)
    with pytest.raises(ImproperlyConfigured, match=r"django-mogilefs\[metrics\]"):
        metrics_view.MetricsMiddleware(lambda request: None)
