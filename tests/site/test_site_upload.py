"""Uploading, replacing and removing an avatar; nothing is left behind on any failure."""

from __future__ import annotations

import io
import re

import pytest
from avatars import services
from avatars.images import check_image
from avatars.models import Avatar
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from PIL import Image

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

KEY = re.compile(r"^(avatars|thumbs)/(\d+)/([A-Za-z0-9_-]{22})\.(jpg|png|gif|webp)$")


def post_image(client, data, name="me.jpg"):
    return client.post("/avatar/", {"image": SimpleUploadedFile(name, data)})


def test_upload_page_needs_login(client):
    response = client.get("/avatar/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/avatar/"
    assert client.post("/avatar/remove/").status_code == 302
    assert Avatar.objects.count() == 0


def test_upload_stores_original_and_thumbnail_under_random_keys(
    alice, user, img, memory_storages, django_capture_on_commit_callbacks
):
    original = img.bytes("PNG", (300, 200))
    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(alice, original, "holiday.png")
    assert response.status_code == 302
    assert response["Location"] == "/u/alice/"

    avatar = Avatar.objects.get(user=user)
    image_key = KEY.match(avatar.image.name)
    thumb_key = KEY.match(avatar.thumbnail.name)
    assert image_key and thumb_key
    assert image_key.groups() == ("avatars", str(user.pk), image_key[3], "png")
    # The same token for both files; no alpha in the source, so a JPEG thumbnail.
    assert thumb_key.groups() == ("thumbs", str(user.pk), image_key[3], "jpg")
    assert (avatar.content_type, avatar.width, avatar.height) == ("image/png", 300, 200)
    assert avatar.size == len(original)
    # A square thumbnail, twice the 128 CSS pixels it is shown at.
    assert (avatar.thumb_width, avatar.thumb_height) == (256, 256)

    # The original is stored byte for byte, in the avatars storage only.
    with memory_storages.avatars.open(avatar.image.name) as f:
        assert f.read() == original
    with memory_storages.thumbs.open(avatar.thumbnail.name) as f:
        thumb = Image.open(io.BytesIO(f.read()))
        assert (thumb.format, thumb.size) == ("JPEG", (256, 256))
    assert memory_storages.all_files() == {avatar.image.name, avatar.thumbnail.name}
    assert not memory_storages.avatars.exists(avatar.thumbnail.name)

    # URLs come from the storage's url().
    assert avatar.image.url == "/media/" + avatar.image.name
    page = alice.get("/u/alice/").content.decode()
    assert f'src="/media/{avatar.thumbnail.name}"' in page
    assert f'href="/media/{avatar.image.name}"' in page
    assert "Your avatar has been updated." in page


def test_replacing_deletes_the_old_files_after_commit(
    alice, user, img, memory_storages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(alice, img.bytes("JPEG"))
    first = Avatar.objects.get(user=user)
    old = {first.image.name, first.thumbnail.name}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_image(alice, img.bytes("PNG", mode="RGBA"), "new.png")
    assert response.status_code == 302
    second = Avatar.objects.get(user=user)
    new = {second.image.name, second.thumbnail.name}
    assert second.pk == first.pk  # updated in place: still one avatar per user
    assert not old & new
    # Until the transaction commits, the old files are still there.
    assert memory_storages.all_files() == old | new
    for callback in callbacks:
        callback()
    assert memory_storages.all_files() == new
    assert second.thumbnail.name.endswith(".png")  # alpha kept as PNG
    assert Avatar.objects.count() == 1


def test_remove_deletes_record_and_files(
    alice, user, img, memory_storages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(alice, img.bytes())
    assert len(memory_storages.all_files()) == 2

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/avatar/remove/")
    assert response.status_code == 302
    assert response["Location"] == "/avatar/"
    assert not Avatar.objects.filter(user=user).exists()
    assert memory_storages.all_files() == set()
    assert "Your avatar has been removed." in alice.get("/avatar/").content.decode()

    # Removing again is harmless.
    response = alice.post("/avatar/remove/", follow=True)
    assert "You had no avatar to remove." in response.content.decode()


def test_remove_asks_for_confirmation_first(alice, user, img, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(alice, img.bytes())
    avatar = Avatar.objects.get(user=user)
    edit = alice.get("/avatar/").content.decode()
    # The edit page links to the confirmation; it has no form that removes at once.
    assert 'href="/avatar/remove/"' in edit
    assert 'action="/avatar/remove/"' not in edit

    response = alice.get("/avatar/remove/")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    page = response.content.decode()
    form = re.search(r'<form method="post" action="/avatar/remove/"[^>]*>(.*?)</form>', page, re.S)
    assert form, page
    assert 'name="csrfmiddlewaretoken"' in form[1]
    assert "Remove avatar</button>" in form[1]
    assert 'href="/avatar/">Keep it</a>' in form[1]
    assert f'src="{avatar.thumbnail.url}"' in page
    assert Avatar.objects.filter(user=user).exists()  # a GET removes nothing


def test_remove_confirmation_without_an_avatar(alice):
    response = alice.get("/avatar/remove/", follow=True)
    assert response.redirect_chain == [("/avatar/", 302)]
    assert "You have no avatar to remove." in response.content.decode()


def test_deleting_the_user_deletes_the_files(
    alice, user, img, memory_storages, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(alice, img.bytes())
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert Avatar.objects.count() == 0
    assert memory_storages.all_files() == set()


def failing(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


def test_storage_failure_mid_upload_leaves_no_record_and_no_file(
    alice, user, img, memory_storages, monkeypatch
):
    # The original is stored, then the thumbnail's store fails (tracker gone, no devices...).
    monkeypatch.setattr(memory_storages.thumbs, "save", failing(OSError("tracker down")))
    response = post_image(alice, img.bytes())
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "The file store is unavailable right now" in response.content.decode()
    assert not Avatar.objects.filter(user=user).exists()
    assert memory_storages.all_files() == set()


def test_storage_failure_on_replace_keeps_the_old_avatar_whole(
    alice, user, img, memory_storages, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(alice, img.bytes())
    before = Avatar.objects.get(user=user)
    files_before = memory_storages.all_files()

    monkeypatch.setattr(memory_storages.thumbs, "save", failing(RuntimeError("no_devices")))
    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(alice, img.bytes("PNG", (90, 90)), "other.png")
    assert response.status_code == 503
    after = Avatar.objects.get(user=user)
    assert (after.image.name, after.thumbnail.name, after.updated) == (
        before.image.name,
        before.thumbnail.name,
        before.updated,
    )
    assert memory_storages.all_files() == files_before


def test_storage_failure_on_the_first_file(alice, user, img, memory_storages, monkeypatch):
    monkeypatch.setattr(memory_storages.avatars, "save", failing(OSError("refused")))
    response = post_image(alice, img.bytes())
    assert response.status_code == 503
    assert not Avatar.objects.exists()
    assert memory_storages.all_files() == set()


def test_database_failure_deletes_the_stored_files(
    alice, user, img, memory_storages, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Avatar, "save", failing(DatabaseError("database is locked")))
    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(alice, img.bytes())
    assert response.status_code == 503
    assert "could not be saved right now" in response.content.decode()
    assert memory_storages.all_files() == set()
    monkeypatch.undo()
    assert not Avatar.objects.exists()


def test_database_failure_on_replace_keeps_old_files(
    alice, user, img, memory_storages, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(alice, img.bytes())
    files_before = memory_storages.all_files()
    monkeypatch.setattr(Avatar, "save", failing(DatabaseError("gone away")))
    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(alice, img.bytes("PNG"), "b.png")
    assert response.status_code == 503
    monkeypatch.undo()
    assert memory_storages.all_files() == files_before
    avatar = Avatar.objects.get(user=user)
    assert {avatar.image.name, avatar.thumbnail.name} == files_before


def test_a_failed_delete_of_old_files_does_not_fail_the_upload(
    alice, user, img, memory_storages, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(alice, img.bytes())
    old = Avatar.objects.get(user=user).image.name
    monkeypatch.setattr(memory_storages.avatars, "delete", failing(OSError("tracker down")))
    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(alice, img.bytes("PNG"), "b.png")
    assert response.status_code == 302
    assert Avatar.objects.get(user=user).image.name != old
    assert f"Could not delete {old!r}" in caplog.text


def checked(img, fmt="JPEG"):
    return check_image(io.BytesIO(img.bytes(fmt)), max_bytes=10**6, max_pixels=10**6, thumb_size=64)


@pytest.mark.django_db(transaction=True)  # real commits: on-commit callbacks run in atomic()
@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_after_the_commit_keeps_the_new_files(
    user, img, memory_storages, monkeypatch, interrupt
):
    services.set_avatar(user, checked(img))
    old = Avatar.objects.get(user=user).stored_files()
    old_names = {name for _, name in old}
    real_delete = memory_storages.avatars.delete

    def delete(name):
        if name in old_names:  # deleting the previous files, after the commit
            raise interrupt()
        real_delete(name)

    monkeypatch.setattr(memory_storages.avatars, "delete", delete)
    with pytest.raises(interrupt):
        services.set_avatar(user, checked(img, "PNG"))
    avatar = Avatar.objects.get(user=user)  # committed: the new record
    assert avatar.image.name not in old_names
    # The committed record's files are still there (the old thumbnail was not reached).
    assert memory_storages.avatars.exists(avatar.image.name)
    assert memory_storages.thumbs.exists(avatar.thumbnail.name)


@pytest.mark.django_db(transaction=True)
def test_an_interrupt_before_the_commit_deletes_the_new_files(
    user, img, memory_storages, monkeypatch
):
    services.set_avatar(user, checked(img))
    files_before = memory_storages.all_files()
    monkeypatch.setattr(Avatar, "save", failing(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        services.set_avatar(user, checked(img, "PNG"))
    monkeypatch.undo()
    assert memory_storages.all_files() == files_before
    avatar = Avatar.objects.get(user=user)
    assert {avatar.image.name, avatar.thumbnail.name} == files_before
