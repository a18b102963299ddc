"""MogileFSStorage through Django's storage API, against a stub tracker and stub node."""

import time

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django_mogilefs.storage import MogileFSStorage

from .storage_stubs import LOCMEM, FileCluster

pytestmark = pytest.mark.unit
STUB_CLUSTER = FileCluster  # the ``cluster`` fixture (conftest.py)


@pytest.fixture
def storage(cluster):
    with override_settings(CACHES=LOCMEM):
        yield MogileFSStorage(
            trackers=[cluster.tracker.address],
            domain="testdom",
            mogile_class="thumb",
            media_url="/media/",
        )


def test_save_streams_and_returns_the_name(storage, cluster):
    name = storage.save("thumbs/1/a b.png", ContentFile(b"png bytes"))
    assert name == "thumbs/1/a b.png"
    assert cluster.existing["thumbs/1/a b.png"] == b"png bytes"
    opened = next(a for c, a in cluster.tracker.requests if c == "create_open")
    assert opened["class"] == "thumb"


def test_save_never_overwrites_an_existing_key(storage, cluster):
    cluster.existing["avatars/a.jpg"] = b"old"
    name = storage.save("avatars/a.jpg", SimpleUploadedFile("a.jpg", b"new"))
    assert name != "avatars/a.jpg" and name.startswith("avatars/a_") and name.endswith(".jpg")
    assert cluster.existing["avatars/a.jpg"] == b"old"
    assert cluster.existing[name] == b"new"


def test_open_reads_a_seekable_file(storage, cluster):
    storage.save("k.bin", ContentFile(b"0123456789"))
    cluster.node.files[cluster.dests[1]] = b"0123456789"
    with storage.open("k.bin") as f:
        f.seek(5)
        assert f.read() == b"56789"


def test_open_for_writing_is_refused(storage):
    with pytest.raises(ValueError):
        storage.open("k", "wb")


def test_unknown_key(storage):
    assert storage.exists("nope") is False
    with pytest.raises(FileNotFoundError):
        storage.size("nope")
    with pytest.raises(FileNotFoundError):
        storage.open("nope")
    storage.delete("nope")  # already gone is not an error


def test_size_and_exists(storage, cluster):
    storage.save("s.txt", ContentFile(b"12345"))
    assert storage.exists("s.txt") and storage.size("s.txt") == 5


@pytest.mark.parametrize("name", ["../etc/passwd", "a/../../b", "/abs/path", "x" * 256, "é" * 200])
def test_bad_names_raise_suspicious_file_operation(storage, name):
    with pytest.raises(SuspiciousFileOperation):
        storage.save(name, ContentFile(b"x"))


def test_empty_name_is_a_value_error(storage):
    with pytest.raises(ValueError):
        storage.delete("")


def test_url_quotes_the_key(storage):
    assert storage.url("avatars/a b#?.jpg") == "/media/avatars/a%20b%23%3F.jpg"


def test_listdir_emulates_directories_over_prefixes(storage, cluster):
    for key in ["a/1.jpg", "a/2.jpg", "a/sub/3.jpg", "a/sub/deeper/4.jpg", "b/5.jpg", "top.txt"]:
        cluster.existing[key] = b""
    assert storage.listdir("a") == (["sub"], ["1.jpg", "2.jpg"])
    assert storage.listdir("") == (["a", "b"], ["top.txt"])


def test_paths_are_cached_and_invalidated_on_save_and_delete(storage, cluster):
    storage.save("p.jpg", ContentFile(b"x"))
    storage.paths("p.jpg")
    storage.paths("p.jpg")
    assert cluster.tracker.commands().count("get_paths") == 1
    storage.save("p2.jpg", ContentFile(b"y"))  # another key does not invalidate this one
    storage.paths("p.jpg")
    assert cluster.tracker.commands().count("get_paths") == 1
    storage.delete("p.jpg")
    cluster.existing["p.jpg"] = b"again"
    storage.paths("p.jpg")
    assert cluster.tracker.commands().count("get_paths") == 2


def test_modified_time_is_the_last_modified_of_a_copy(storage, cluster):
    before = time.time()
    storage.save("t.txt", ContentFile(b"x"))
    modified = storage.get_modified_time("t.txt")
    assert modified.tzinfo is not None  # USE_TZ is on
    assert int(before) <= modified.timestamp() <= time.time() + 1
    assert storage.get_created_time("t.txt") == modified


def test_modified_time_of_an_unknown_file_is_file_not_found(storage):
    with pytest.raises(FileNotFoundError):
        storage.get_modified_time("nope.txt")


def test_modified_time_without_any_last_modified_is_file_not_found(storage, cluster):
    storage.save("t.txt", ContentFile(b"x"))
    cluster.node.mtimes.clear()
    storage.forget_paths("t.txt")
    with pytest.raises(FileNotFoundError):
        storage.get_modified_time("t.txt")


def test_a_save_asks_once_whether_the_name_is_taken(storage, cluster):
    storage.save("avatars/new.jpg", ContentFile(b"x"))
    assert cluster.tracker.commands().count("file_info") == 1


def test_with_allow_overwrite_a_save_asks_nothing_and_replaces(cluster):
    cluster.existing["avatars/a.jpg"] = b"old"
    with override_settings(CACHES=LOCMEM):
        storage = MogileFSStorage(
            trackers=[cluster.tracker.address], domain="testdom", allow_overwrite=True
        )
        name = storage.save("avatars/a.jpg", ContentFile(b"new"))
        long_name = storage.save("avatars/" + "b" * 40 + ".jpg", ContentFile(b"y"), max_length=30)
    assert (name, cluster.existing[name]) == ("avatars/a.jpg", b"new")
    assert "file_info" not in cluster.tracker.commands()
    assert len(long_name) <= 30 and long_name.endswith(".jpg")  # max_length still holds
