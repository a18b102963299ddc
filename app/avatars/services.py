"""Setting and removing a user's avatar, with nothing left half-done.

The files are stored first, then the record is written in a transaction:

* a storage failure (tracker down, no writeable device...) deletes whatever was
  already stored and raises :class:`StorageUnavailable`; the record is untouched;
* a database failure (or an interrupt) before the commit deletes the new files again
  and re-raises; once the record is committed they stay, even if deleting the
  previous files then fails or is interrupted;
* the previous files are deleted only once the new record is committed
  (``transaction.on_commit``), so a failed replace keeps the old avatar whole.

Callers must not wrap these in an outer transaction that may roll back after
they return (the site does not use ATOMIC_REQUESTS): the new files would then
outlive their record.

The storages are reached only through Django's storage API (save, delete).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import transaction

from .images import CheckedImage
from .models import Avatar, image_key, new_token, thumb_key

logger = logging.getLogger(__name__)


class StorageUnavailable(Exception):
    """The file storage could not take the upload; nothing was kept."""


def _storages() -> tuple[Storage, Storage]:
    return (
        Avatar._meta.get_field("image").storage,
        Avatar._meta.get_field("thumbnail").storage,
    )


def set_avatar(user, checked: CheckedImage) -> Avatar:
    """Store ``checked`` and its thumbnail as ``user``'s avatar, replacing any previous one."""
    image_storage, thumb_storage = _storages()
    token = new_token()
    stored: list[tuple[Storage, str]] = []
    try:
        name = image_storage.save(
            image_key(user.pk, token, checked.extension),
            ContentFile(checked.data),
            max_length=255,
        )
        stored.append((image_storage, name))
        thumb_name = thumb_storage.save(
            thumb_key(user.pk, token, checked.thumbnail.extension),
            ContentFile(checked.thumbnail.data),
            max_length=255,
        )
        stored.append((thumb_storage, thumb_name))
    except Exception as exc:
        logger.exception("Storing the avatar of user %s failed", user.pk)
        delete_files(stored)
        raise StorageUnavailable(str(exc)) from exc

    # Set by the first on-commit callback: once the record is committed, the new files
    # are the avatar's and are never cleaned up here, whatever a later callback (or a
    # KeyboardInterrupt or SystemExit while they run) raises out of atomic().
    committed = False

    def mark_committed() -> None:
        nonlocal committed
        committed = True

    try:
        with transaction.atomic():
            transaction.on_commit(mark_committed)
            # One writer per user at a time (also guards the first upload's INSERT).
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            avatar = Avatar.objects.filter(user=user).first()
            previous = avatar.stored_files() if avatar else []
            if avatar is None:
                avatar = Avatar(user=user)
            avatar.image = name
            avatar.thumbnail = thumb_name
            avatar.content_type = checked.content_type
            # As displayed (EXIF orientation applied), which is what the profile shows.
            avatar.width, avatar.height = checked.display_size
            avatar.size = checked.size
            avatar.thumb_width = checked.thumbnail.width
            avatar.thumb_height = checked.thumbnail.height
            avatar.save()
            transaction.on_commit(partial(delete_files, previous))
    except BaseException:
        if committed:
            logger.exception("User %s has a new avatar, but an on-commit step failed", user.pk)
        else:
            logger.exception("Saving the avatar record of user %s failed", user.pk)
            delete_files(stored)
        raise
    logger.info("User %s has a new avatar %s", user.pk, name)
    return avatar


def remove_avatar(user) -> bool:
    """Delete ``user``'s avatar; its files go once the deletion is committed."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        avatar = Avatar.objects.filter(user=user).first()
        if avatar is None:
            return False
        avatar.delete()  # avatars.signals deletes the files on commit
    logger.info("User %s removed their avatar", user.pk)
    return True


def delete_files(files: Iterable[tuple[Storage, str]]) -> None:
    """Delete each (storage, name), logging (not raising) what could not be deleted."""
    for storage, name in files:
        try:
            storage.delete(name)
        except Exception:
            logger.exception("Could not delete %r from storage; it is left orphaned", name)
