"""With the media tier stopped, stored files are still served: by the site's app servers.

Perlbal's media service sends /media/ to the media tier; while none of its servers
accepts connections, MediaRoute sends those requests to the site service instead
(gunicorn answers them too, more slowly), and back once the tier is up again.
"""

from __future__ import annotations

import time

import pytest
import requests
from waiting import wait_until

from e2e import images
from e2e.conftest import Target
from e2e.flows import serve_counts, served, upload

pytestmark = pytest.mark.e2e

FILES = 5
# How long one GET may take while the tier is down: Perlbal gives a media server up after
# a refused connect, or one still pending after 1 s (a stopped container's address).
SLOW_GET = 10.0
BACK_DEADLINE = 60.0


def tier_answers_through_perlbal(target: Target) -> bool:
    """Whether a request for a file through Perlbal now reaches the media tier."""
    if target.media_tier_url is None:
        return True  # nothing to wait for but the hook itself
    try:
        before = serve_counts(target.media_tier_url).get("404", 0)
    except requests.RequestException:
        return False  # not up yet
    missing = f"{target.site_url}{target.media_url}back/{time.monotonic_ns()}.png"
    requests.get(missing, timeout=SLOW_GET)
    return serve_counts(target.media_tier_url).get("404", 0) > before


def test_stored_files_are_served_while_the_media_tier_is_down(target: Target, user) -> None:
    if not target.can_stop_the_media_tier:
        pytest.skip(
            "the suite did not start this stack: set E2E_MEDIA_TIER_STOP and "
            "E2E_MEDIA_TIER_START to commands that stop and start the media tier"
        )
    client, username = user
    target.stop_the_media_tier()
    try:
        # New uploads: their URLs are in no reproxy cache, so every GET needs an app server.
        for seed in range(FILES):
            original = images.picture(200, 200, "PNG", seed=300 + seed)
            links = upload(client, username, original, "me.png", "image/png")
            started = time.monotonic()
            assert served(client, links.image_url).content == original
            assert time.monotonic() - started < SLOW_GET
        missing = client.get(target.media_url + "no/such/file.png")
        assert missing.status_code == 404
    finally:
        target.start_the_media_tier()
        # Before the next test: Perlbal tries a failed server again a second after.
        wait_until(
            "Perlbal sends files to the media tier again",
            lambda: tier_answers_through_perlbal(target),
            BACK_DEADLINE,
        )
    original = images.picture(200, 200, "PNG", seed=399)
    links = upload(client, username, original, "me.png", "image/png")
    assert served(client, links.image_url).content == original
