"""``/metrics``: answered on the app's own port, never through the front Perlbal."""

from __future__ import annotations

import pytest
import requests

from e2e.conftest import Target

pytestmark = pytest.mark.e2e


def test_metrics_are_not_reachable_through_perlbal(target: Target) -> None:
    response = requests.get(target.site_url + "/metrics", timeout=10)
    assert response.status_code == 404
    assert "mogilefs_" not in response.text


def test_metrics_are_served_on_the_apps_own_port(target: Target) -> None:
    if target.app_url is None:
        pytest.skip("the app's own port is reachable only with the suite's own stack")
    # The devices and host names come from the tracker: a real cluster names them its own way.
    hosts = {host.hostid: host.name for host in target.admin.get_hosts()}
    sized = [dev for dev in target.devices() if dev.mb_total is not None]
    assert sized, "the tracker knows the size of no alive device"
    response = requests.get(target.app_url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.text
    assert "python_gc_objects_collected_total" not in text  # every worker's sum, not one's
    assert "mogilefs_tracker_up 1.0" in text
    for dev in sized:
        labels = f'devid="{dev.devid}",host="{hosts[dev.hostid]}"'
        assert f"mogilefs_device_total_bytes{{{labels}}}" in text
    # Only direct scrapes: a proxied one (as Perlbal sends it) is refused on this port too.
    proxied = requests.get(
        target.app_url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )
    assert proxied.status_code == 404


def test_file_answers_are_counted_where_they_are_given(target: Target) -> None:
    # Perlbal sends /media/ to the media tier (the app servers without one).
    answering = target.media_tier_url or target.app_url
    if answering is None:
        pytest.skip("set E2E_MEDIA_TIER_URL (or E2E_APP_URL) to read the tier's /metrics")
    requests.get(target.site_url + target.media_url + "no/such/file.png", timeout=10)
    response = requests.get(answering + "/metrics", timeout=10)
    assert response.status_code == 200
    text = response.text
    assert "python_gc_objects_collected_total" not in text
    assert 'mogilefs_serve_responses_total{kind="404"}' in text
    assert 'mogilefs_tracker_request_seconds_count{command="get_paths"}' in text
    proxied = requests.get(
        answering + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )
    assert proxied.status_code == 404
