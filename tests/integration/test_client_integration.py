"""The client against a tracker and storage nodes over TCP and HTTP.

By default the cluster is the fake tracker with real Perlbal storage nodes; with
MOGILEFS_TRACKERS and MOGILEFS_DOMAIN set, these same tests run against that
cluster (its domain needs the classes ``avatar`` and ``thumb``). Every key lives
under a fresh prefix and is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid

import pytest
import requests
from django_mogilefs.client import MogileFSClient
from django_mogilefs.exceptions import KeyExistsError, UnknownKeyError
from unit.stubs import closed_port
from waiting import wait_until

pytestmark = pytest.mark.integration

REPLICATION_DEADLINE = float(os.environ.get("MOGILEFS_REPLICATION_DEADLINE", "60"))


@pytest.fixture
def client(mogile_cluster):
    c = MogileFSClient(mogile_cluster.trackers, mogile_cluster.domain)
    yield c
    c.close()


@pytest.fixture
def prefix(client):
    """A fresh key prefix; every key under it is deleted after the test."""
    p = f"itest-{uuid.uuid4().hex[:12]}/"
    yield p
    for key in list(client.list_keys(p)):
        with contextlib.suppress(UnknownKeyError):
            client.delete(key)


def fetch(url: str) -> bytes:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, url
    return response.content


def test_store_then_every_path_holds_the_same_bytes(client, prefix):
    data = os.urandom(200_000)
    key = prefix + "avatar.bin"
    assert client.store(key, io.BytesIO(data), cls="avatar") == len(data)
    paths = client.get_paths(key, pathcount=3)
    assert paths and all(fetch(p) == data for p in paths)
    assert client.open(key).read() == data


def test_avatar_reaches_three_copies_and_thumb_stays_at_one(client, prefix):
    client.store(prefix + "a.jpg", b"avatar bytes", cls="avatar")
    client.store(prefix + "t.jpg", b"thumb bytes", cls="thumb")
    info = wait_until(
        "3 copies of the avatar",
        lambda: (i := client.file_info(prefix + "a.jpg")).devcount >= 3 and i,
        REPLICATION_DEADLINE,
    )
    assert info and info.devcount == 3 and info.cls == "avatar"
    assert len(set(client.file_info(prefix + "a.jpg", devices=True).devids)) == 3
    thumb = client.file_info(prefix + "t.jpg", devices=True)
    assert (thumb.devcount, len(thumb.devids), thumb.cls) == (1, 1, "thumb")
    paths = client.get_paths(prefix + "a.jpg", pathcount=3)
    assert len(paths) == 3 and all(fetch(p) == b"avatar bytes" for p in paths)


def test_large_file_streams_through(client, prefix):
    chunk = os.urandom(1 << 20)
    key = prefix + "big.bin"
    size = client.store(key, (chunk for _ in range(8)), cls="thumb")
    assert size == 8 << 20
    digest = hashlib.md5(client.open(key).read()).hexdigest()
    assert digest == hashlib.md5(chunk * 8).hexdigest()
    assert client.file_info(key).length == 8 << 20


@pytest.mark.parametrize("char", ["\r", "\n", "&", "=", "%", "+", " ", "ä", "猫", "?", "#"])
def test_keys_with_special_characters_round_trip(client, prefix, char):
    key = f"{prefix}x{char}y{char}=z.txt"
    client.store(key, char.encode() * 3, cls="thumb")
    assert client.open(key).read() == char.encode() * 3
    assert list(client.list_keys(prefix)) == [key]
    assert client.file_info(key).key == key


def test_list_keys_pages_past_the_1000_key_limit(client, prefix):
    keys = [f"{prefix}{i:05d}" for i in range(1003)]
    for key in keys:
        client.store(key, b"", cls="thumb")
    assert list(client.list_keys(prefix)) == keys


def test_rename_refuses_to_overwrite_and_delete_removes(client, prefix):
    a, b = prefix + "a", prefix + "b"
    client.store(a, b"A", cls="thumb")
    client.store(b, b"B", cls="thumb")
    with pytest.raises(KeyExistsError):
        client.rename(a, b)
    client.rename(a, prefix + "c")
    assert client.open(prefix + "c").read() == b"A"
    assert not client.exists(a)
    old_paths = client.get_paths(b)
    client.delete(b)
    with pytest.raises(UnknownKeyError):
        client.get_paths(b)
    with pytest.raises(UnknownKeyError):
        client.delete(b)
    gone = wait_until(
        "the deleted file's copies gone",
        lambda: all(requests.get(p, timeout=5).status_code == 404 for p in old_paths),
        REPLICATION_DEADLINE,
    )
    assert gone, "the storage nodes still serve a deleted file"


def test_update_class_re_replicates(client, prefix):
    key = prefix + "promote.jpg"
    client.store(key, b"promote me", cls="thumb")
    client.update_class(key, "avatar")
    info = wait_until(
        "3 copies after update_class",
        lambda: (i := client.file_info(key)).devcount >= 3 and i,
        REPLICATION_DEADLINE,
    )
    assert info and info.cls == "avatar"


def test_storing_again_replaces_the_key_with_a_new_fid(client, prefix):
    key = prefix + "same"
    client.store(key, b"first", cls="thumb")
    fid = client.file_info(key).fid
    client.store(key, b"second!", cls="thumb")
    info = client.file_info(key)
    assert info.fid != fid and info.length == 7
    assert client.open(key).read() == b"second!"


def test_a_dead_tracker_in_the_list_is_skipped(mogile_cluster, prefix):
    dead = closed_port()
    client = MogileFSClient([dead, *mogile_cluster.trackers], mogile_cluster.domain)
    for i in range(4):
        client.store(f"{prefix}f{i}", b"x", cls="thumb")
    assert len(list(client.list_keys(prefix))) == 4
