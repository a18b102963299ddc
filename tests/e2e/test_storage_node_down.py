"""With one storage node stopped, every avatar is still served and uploads still work.

Originals have three copies, so Perlbal falls back to another copy (the dead node's
URL refuses the connection, or the tracker no longer lists it). Thumbnails have one:
those whose only copy is on the stopped node are unavailable until it comes back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e import images
from e2e.conftest import (
    MONITOR_DEADLINE,
    PASSWORD,
    REPLICATION_DEADLINE,
    Target,
    new_username,
    wait_until,
)
from e2e.flows import served, upload

pytestmark = pytest.mark.e2e

USERS = 3


def not_writeable(target: Target) -> set[int]:
    return {d.devid for d in target.devices() if d.observed_state != "writeable"}


@pytest.fixture
def uploaded(target: Target, mogile) -> list[tuple[object, bytes, object]]:
    """USERS avatars, each with its 3 copies and fetched once: (client, original, links).

    Fetching them first puts their paths in the site's cache and Perlbal's reproxy
    cache, so the dead node's URL is still handed to Perlbal afterwards.
    """
    out = []
    for seed in range(USERS):
        client, username = target.client(), new_username()
        assert client.sign_up(username, PASSWORD).status_code == 302
        data = images.picture(300, 300, "PNG", seed=100 + seed)
        out.append((client, data, upload(client, username, data, "me.png", "image/png")))
    for _, _, links in out:
        key = target.key(links.image_url)
        wait_until(
            f"{key} has 3 copies",
            lambda k=key: mogile.file_info(k).devcount >= 3,
            REPLICATION_DEADLINE,
        )
    for client, data, links in out:
        assert served(client, links.image_url).content == data
        served(client, links.thumb_url)
    return out


@pytest.fixture
def node_down(target: Target) -> Iterator[set[int]]:
    """Stop one storage node until the tracker notices; its device ids. Restarted after."""
    if not target.can_stop_a_node:
        pytest.skip(
            "the suite did not start this stack: set E2E_STORAGE_NODE_STOP and "
            "E2E_STORAGE_NODE_START to commands that stop and start one storage node"
        )
    assert not not_writeable(target), "a device is already not writeable before the test"
    target.stop_a_node()
    try:
        yield wait_until(
            "the tracker sees the node down", lambda: not_writeable(target), MONITOR_DEADLINE
        )
    finally:
        target.start_the_node()
        wait_until(
            "every device is writeable again", lambda: not not_writeable(target), MONITOR_DEADLINE
        )


def test_everything_is_served_and_uploads_work_with_a_node_down(
    target: Target, mogile, uploaded, node_down
):
    down = node_down
    for client, data, links in uploaded:
        assert served(client, links.image_url).content == data
        thumb = mogile.file_info(target.key(links.thumb_url), devices=True)
        response = client.get(links.thumb_url)
        if set(thumb.devids) & down:
            assert response.status_code == 503
        else:
            assert response.status_code == 200

    client, username = target.client(), new_username()
    assert client.sign_up(username, PASSWORD).status_code == 302
    data = images.picture(seed=200)
    links = upload(client, username, data, "new.png", "image/png")
    assert served(client, links.image_url).content == data
    assert served(client, links.thumb_url).headers["Content-Type"] == "image/jpeg"
    for url in (links.image_url, links.thumb_url):
        info = mogile.file_info(target.key(url), devices=True)
        assert info.devids and not set(info.devids) & down
