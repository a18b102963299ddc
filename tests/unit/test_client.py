"""MogileFSClient behaviour beyond the pymogilefs bugs: sources, checksums, pagination."""

import hashlib
import io

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.exceptions import InvalidKeyError, NoDevicesError, StorageNodeError

from .stubs import Cluster, StubTracker, ok

pytestmark = pytest.mark.unit


class OneShot(io.RawIOBase):
    """A non-seekable stream (like a socket or a pipe)."""

    def __init__(self, data):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        chunk = self._data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def closes(cluster):
    return [a for c, a in cluster.tracker.requests if c == "create_close"]


def test_store_from_an_iterator_of_chunks(cluster):
    chunks = [b"a" * 70000, b"b" * 5, b"c" * 100000]
    assert cluster.client.store("k", iter(chunks), cls="thumb") == 170005
    assert cluster.node.files[cluster.dests[0]] == b"".join(chunks)


def test_store_from_a_non_seekable_stream_survives_a_retry(cluster):
    cluster.node.status[cluster.dests[0]] = 503
    data = bytes(range(256)) * 1000
    cluster.client.store("k", OneShot(data), cls="thumb")
    assert cluster.node.files[cluster.dests[1]] == data


def test_store_reads_a_file_from_its_current_position(cluster):
    f = io.BytesIO(b"headerBODY")
    f.seek(6)
    assert cluster.client.store("k", f, cls="thumb") == 4
    assert cluster.node.files[cluster.dests[0]] == b"BODY"
    assert closes(cluster)[0]["size"] == "4"


def test_store_an_empty_file(cluster):
    assert cluster.client.store("k", b"", cls="thumb") == 0
    assert cluster.node.files[cluster.dests[0]] == b""
    assert closes(cluster)[0]["size"] == "0"


def test_checksum_is_sent_and_verified_only_for_classes_with_a_hashtype(cluster):
    cluster.client.store("a", b"hello world!", cls="md5class")
    cluster.client.store("b", b"hello world!", cls="thumb")
    first, second = closes(cluster)
    assert first["checksum"] == "MD5:" + hashlib.md5(b"hello world!").hexdigest()
    assert first["checksumverify"] == "1"
    assert "checksum" not in second and "checksumverify" not in second


def test_create_open_asks_for_multi_dest_with_class_key_and_size(cluster):
    cluster.client.store("avatars/ä b&c.jpg", b"12345", cls="avatar")
    opened = next(a for c, a in cluster.tracker.requests if c == "create_open")
    assert opened == {
        "domain": "testdom",
        "key": "avatars/ä b&c.jpg",
        "multi_dest": "1",
        "size": "5",
        "class": "avatar",
    }


def test_no_devices_is_raised_as_is(cluster):
    cluster.tracker.answer = lambda cmd, args: (
        b"ERR no_devices No+devices+found+to+store+file\r\n"
        if cmd == "create_open"
        else Cluster.answer(cluster, cmd, args)
    )
    with pytest.raises(NoDevicesError):
        cluster.client.store("k", b"x", cls="thumb")


def test_all_destinations_failing_names_them(cluster):
    for d in cluster.dests:
        cluster.node.status[d] = 500
    with pytest.raises(StorageNodeError) as info:
        cluster.client.store("k", b"x")
    assert all(cluster.node.url(d) in str(info.value) for d in cluster.dests)


def test_invalid_key_is_rejected_before_anything_is_sent(cluster):
    with pytest.raises(InvalidKeyError):
        cluster.client.store("x" * 300, b"data")
    assert cluster.tracker.requests == []


def test_get_paths_asks_for_pathcount_and_noverify(cluster):
    assert cluster.client.get_paths("k", pathcount=3) == cluster.paths
    _, args = cluster.tracker.requests[-1]
    assert args == {"domain": "testdom", "key": "k", "pathcount": "3", "noverify": "1"}


def list_keys_answer(keys, calls):
    """A tracker's list_keys over ``keys`` (prefix, after, limit, none_match), logging calls."""

    def answer(cmd, args):
        calls.append(args)
        sent, after = args.get("prefix", ""), args.get("after", "")
        page = [k for k in keys if k.startswith(sent) and k > after][: int(args["limit"])]
        if not page:
            return b"ERR none_match No+keys+match\r\n"
        return ok(
            key_count=len(page),
            next_after=page[-1],
            **{f"key_{i}": k for i, k in enumerate(page, 1)},
        )

    return answer


def listed(keys, prefix, calls):
    stub = StubTracker(list_keys_answer(keys, calls))
    try:
        return list(MogileFSClient([stub.address], "d").list_keys(prefix))
    finally:
        stub.close()


def test_list_keys_follows_every_page():
    keys = [f"k/{i:05d}" for i in range(2500)]
    calls = []
    assert listed(keys, "k/", calls) == keys
    assert len(calls) == 4, "pages of 1000, 1000, 500, then none_match ends it"
    assert all(c["limit"] == "1000" for c in calls)


def test_list_keys_with_no_match_is_empty():
    stub = StubTracker(lambda c, a: b"ERR none_match No+keys+match\r\n")
    try:
        assert list(MogileFSClient([stub.address], "d").list_keys("nothing/")) == []
    finally:
        stub.close()


def test_file_info_is_decoded():
    stub = StubTracker(
        lambda c, a: ok(
            fid=5,
            key="a b",
            domain="d",
            length=12,
            devcount=3,
            devids="1,2,3",
            **{"class": "avatar"},
        )
    )
    try:
        info = MogileFSClient([stub.address], "d").file_info("a b", devices=True)
    finally:
        stub.close()
    assert (info.fid, info.key, info.cls, info.length, info.devcount, info.devids) == (
        5,
        "a b",
        "avatar",
        12,
        3,
        (1, 2, 3),
    )


def test_open_skips_a_missing_copy(cluster):
    cluster.node.files[cluster.dests[1]] = b"good copy"
    f = cluster.client.open("k", paths=[cluster.node.url("/missing"), cluster.paths[1]])
    assert f.seekable() and f.read() == b"good copy"


@pytest.mark.parametrize("prefix", ["50%/", "c++/", "a\\b/", "x(y)/"])
def test_prefixes_the_tracker_would_misread_are_filtered_here(prefix):
    keys = sorted([prefix + "hit", prefix[:-2] + "Z/miss", prefix[0] + "/miss", "zzz"])
    calls = []
    assert listed(keys, prefix, calls) == [prefix + "hit"]
    assert all(not set(c.get("prefix", "")) & set("%\\+()") for c in calls)


def test_classes_survive_a_tracker_outage_once_known(cluster):
    assert "md5class" in cluster.client.classes()
    cluster.tracker.close()
    assert "md5class" in cluster.client.classes(refresh=True)
