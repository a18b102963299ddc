"""With one storage node stopped, every avatar is still served and uploads still work.

A node can be lost two ways, and a real MogileFS 2.73 tracker treats them differently:
a port that refuses makes the device ``unreachable`` in ``get_devices``; a node that is
gone (a stopped container: its address no longer answers) marks the *host*
unreachable inside the tracker, which then skips it in ``create_open`` and
``get_paths`` while ``get_devices`` still says ``writeable``. So the test judges the
node by what the tracker does: a device counts as down when it is reported not
writeable *or* when ``create_open`` no longer offers it.

Originals have three copies, so Perlbal falls back to another copy. Thumbnails have
one: those whose only copy is on the stopped node are unavailable until it returns.
"""

from __future__ import annotations

import pytest
from django_mogilefs.cluster import avoided_by_trackers
from waiting import wait_until

from e2e import images
from e2e.conftest import (
    MONITOR_DEADLINE,
    PASSWORD,
    REPLICATION_DEADLINE,
    Target,
    new_username,
)
from e2e.flows import failed_gets, served, upload

pytestmark = pytest.mark.e2e

USERS = 3
GETS = 1000


def avoided_by_every_tracker(target: Target) -> set[int]:
    """Alive devices no tracker uses now (each runs its own monitor): not writeable, or
    not offered."""
    return set.intersection(*avoided_by_trackers(target.trackers, target.domain, "avatar").values())


def avoided_by_a_tracker(target: Target) -> set[int]:
    return set.union(*avoided_by_trackers(target.trackers, target.domain, "avatar").values())


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


def test_everything_is_served_and_uploads_work_with_a_node_down(target: Target, mogile, uploaded):
    if not target.can_stop_a_node:
        pytest.skip(
            "the suite did not start this stack: set E2E_STORAGE_NODE_STOP and "
            "E2E_STORAGE_NODE_START to commands that stop and start one storage node"
        )
    assert not avoided_by_a_tracker(target), "a tracker avoids a device before the test"
    target.stop_a_node()
    try:
        down = wait_until(
            "every tracker stops using the stopped node",
            lambda: avoided_by_every_tracker(target),
            MONITOR_DEADLINE,
        )
        wanted = [(links.image_url, data) for _, data, links in uploaded]
        failures = failed_gets(target, wanted, GETS)
        assert failures == [], f"{len(failures)} of {GETS} GETs failed, e.g. {failures[:3]}"

        for client, _, links in uploaded:
            thumb = mogile.file_info(target.key(links.thumb_url), devices=True)
            expected = 503 if set(thumb.devids) & down else 200
            assert client.get(links.thumb_url).status_code == expected

        client, username = target.client(), new_username()
        assert client.sign_up(username, PASSWORD).status_code == 302
        data = images.picture(seed=200)
        links = upload(client, username, data, "new.png", "image/png")
        assert served(client, links.image_url).content == data
        assert served(client, links.thumb_url).headers["Content-Type"] == "image/jpeg"
        for url in (links.image_url, links.thumb_url):
            info = mogile.file_info(target.key(url), devices=True)
            assert info.devids and not set(info.devids) & down
    finally:
        target.start_the_node()
    wait_until(
        "every tracker uses every device again",
        lambda: not avoided_by_a_tracker(target),
        MONITOR_DEADLINE,
    )
    # What was stored while the node was away gets its third copy once it is back.
    key = target.key(links.image_url)
    wait_until(
        f"{key} has 3 copies again",
        lambda: mogile.file_info(key).devcount >= 3,
        REPLICATION_DEADLINE,
    )
    assert served(client, links.image_url).content == data
