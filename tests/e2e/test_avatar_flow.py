"""Sign up, upload, serve, replicate, replace and remove: all through Perlbal."""

from __future__ import annotations

import time

import pytest
from waiting import wait_until

from e2e import images
from e2e.conftest import REPLICATION_DEADLINE, Target
from e2e.flows import key_unknown, serve_counts, served, tracker_bytes, upload

pytestmark = pytest.mark.e2e


def test_upload_is_served_through_perlbal_with_the_stored_bytes(target: Target, mogile, user):
    client, username = user
    original = images.picture(400, 300, "PNG", seed=1)
    links = upload(client, username, original, "me.png", "image/png")

    image = served(client, links.image_url)
    assert image.headers["Content-Type"] == "image/png"
    assert image.content == original
    assert set(tracker_bytes(mogile, target.key(links.image_url))) == {original}

    thumb = served(client, links.thumb_url)
    assert thumb.headers["Content-Type"] == "image/jpeg"
    assert thumb.content[:3] == b"\xff\xd8\xff"
    assert set(tracker_bytes(mogile, target.key(links.thumb_url))) == {thumb.content}


def test_perlbal_fetches_the_bytes_from_a_storage_node_not_from_django(
    target: Target, mogile, user
):
    # The other tests would pass just as well if Django streamed every file itself.
    # The answers are counted by the servers Perlbal sends /media/ to: the media tier's.
    answering = target.media_tier_url or target.app_url
    if answering is None:
        pytest.skip(
            "set E2E_MEDIA_TIER_URL (or E2E_APP_URL without a media tier) to the address of "
            "the app servers that answer /media/ (their /metrics) for this test"
        )
    client, username = user
    original = images.picture(360, 240, "PNG", seed=11)
    links = upload(client, username, original, "me.png", "image/png")

    # A new file is in no cache: Perlbal asks the media tier, which answers with storage
    # URLs (X-REPROXY-URL) and no bytes; Perlbal fetches them from a storage node.
    before = serve_counts(answering)
    assert served(client, links.image_url).content == original
    after = serve_counts(answering)
    assert after.get("reproxy", 0) == before.get("reproxy", 0) + 1, (before, after)
    assert after.get("stream", 0) == before.get("stream", 0), (before, after)
    assert set(tracker_bytes(mogile, target.key(links.image_url))) == {original}


def test_avatar_reaches_three_copies_and_thumbnail_stays_at_one(target: Target, mogile, user):
    client, username = user
    links = upload(client, username, images.picture(seed=2, fmt="JPEG"), "me.jpg", "image/jpeg")
    image_key, thumb_key = target.key(links.image_url), target.key(links.thumb_url)

    def replicated():
        info = mogile.file_info(image_key, devices=True)
        return info if info.devcount >= 3 else None

    info = wait_until("the avatar has 3 copies", replicated, REPLICATION_DEADLINE)
    assert info.cls == "avatar"
    assert info.devcount == 3 and len(set(info.devids)) == 3

    # The thumbnail was stored alongside; by now the replicator has seen it too.
    for _ in range(4):
        thumb = mogile.file_info(thumb_key, devices=True)
        assert (thumb.cls, thumb.devcount) == ("thumb", 1)
        time.sleep(0.5)
    assert len(set(tracker_bytes(mogile, image_key))) == 1


def test_replacing_deletes_the_old_files(target: Target, mogile, user):
    client, username = user
    first = upload(client, username, images.picture(seed=3), "one.png", "image/png")
    second_bytes = images.picture(200, 200, "PNG", seed=4)
    second = upload(client, username, second_bytes, "two.png", "image/png")
    assert {second.image_url, second.thumb_url}.isdisjoint({first.image_url, first.thumb_url})

    for url in (first.image_url, first.thumb_url):
        wait_until(
            f"{target.key(url)} is deleted", lambda u=url: key_unknown(mogile, target.key(u)), 10
        )
        assert client.get(url).status_code == 404
    assert served(client, second.image_url).content == second_bytes


def test_removing_deletes_the_files(target: Target, mogile, user):
    client, username = user
    links = upload(client, username, images.picture(seed=5), "me.png", "image/png")

    response = client.remove_avatar()
    assert response.status_code == 302
    assert client.avatar_links(username) is None
    for url in (links.image_url, links.thumb_url):
        wait_until(
            f"{target.key(url)} is deleted", lambda u=url: key_unknown(mogile, target.key(u)), 10
        )
        assert client.get(url).status_code == 404
