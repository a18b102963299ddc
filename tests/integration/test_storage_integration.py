"""MogileFSStorage (Django's storage API) against a tracker and storage nodes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils import timezone
from django_mogilefs.storage import MogileFSStorage

pytestmark = pytest.mark.integration

LOCMEM = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "storage-integration",
    }
}


@pytest.fixture
def storage(mogile_cluster):
    with override_settings(CACHES=LOCMEM):
        yield MogileFSStorage(
            trackers=mogile_cluster.trackers, domain=mogile_cluster.domain, mogile_class="thumb"
        )


@pytest.fixture
def prefix(storage):
    p = f"itest-{uuid.uuid4().hex[:12]}"
    yield p
    for key in list(storage.client.list_keys(p + "/")):
        storage.delete(key)


def test_save_open_size_exists_delete(storage, prefix):
    name = storage.save(f"{prefix}/a b é.txt", ContentFile(b"hello mogile"))
    assert name == f"{prefix}/a b é.txt"
    assert storage.exists(name) and storage.size(name) == 12
    with storage.open(name) as f:
        assert f.read() == b"hello mogile"
    storage.delete(name)
    assert not storage.exists(name)


def test_saving_under_an_existing_name_keeps_both(storage, prefix):
    first = storage.save(f"{prefix}/same.txt", ContentFile(b"one"))
    second = storage.save(f"{prefix}/same.txt", ContentFile(b"two"))
    assert first != second
    assert storage.open(first).read() == b"one" and storage.open(second).read() == b"two"


def test_listdir(storage, prefix):
    for name in ["a.txt", "b.txt", "sub/c.txt", "sub/deep/d.txt"]:
        storage.save(f"{prefix}/{name}", ContentFile(b"x"))
    assert storage.listdir(prefix) == (["sub"], ["a.txt", "b.txt"])
    assert storage.listdir(f"{prefix}/sub") == (["deep"], ["c.txt"])


def test_modified_time_comes_from_the_storage_node(storage, prefix):
    before = timezone.now() - timedelta(seconds=5)
    name = storage.save(f"{prefix}/t.txt", ContentFile(b"time"))
    modified = storage.get_modified_time(name)
    assert before <= modified <= timezone.now() + timedelta(seconds=5)
    assert storage.get_created_time(name) == modified


def test_each_field_can_use_its_own_class(mogile_cluster, prefix):
    with override_settings(CACHES=LOCMEM):
        avatars = MogileFSStorage(
            trackers=mogile_cluster.trackers, domain=mogile_cluster.domain, mogile_class="avatar"
        )
        name = avatars.save(f"{prefix}/avatar.png", ContentFile(b"png"))
        assert avatars.file_info(name).cls == "avatar"


def test_a_thumbnails_first_view_asks_the_tracker_once(mogile_cluster, storage, prefix):
    """Saved in class thumb (1 copy), located by a storage of no class (the serve view's):
    complete from get_paths alone, the class known from the save."""
    with override_settings(CACHES=LOCMEM):
        serving = MogileFSStorage(trackers=mogile_cluster.trackers, domain=mogile_cluster.domain)
        name = storage.save(f"{prefix}/thumb.png", ContentFile(b"thumb"))
        serving.client.classes()  # the class table, cached a minute
        asked, request = [], serving.client.pool.request

        def counted(command, args=None):
            asked.append(command)
            return request(command, args)

        serving.client.pool.request = counted
        location = serving.locate(name)
    assert asked == ["get_paths"]
    assert location.complete and len(location.paths) == 1
