"""One avatar per user: the original in MogileFS class ``avatar``, the thumbnail in ``thumb``."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.files.storage import Storage
from django.db import models

from .storages import avatar_storage, thumb_storage


def new_token() -> str:
    """A random, URL-safe part for file names, so every upload gets new, cacheable URLs."""
    return secrets.token_urlsafe(16)


def image_key(user_id: int, token: str, extension: str) -> str:
    return f"avatars/{user_id}/{token}.{extension}"


def thumb_key(user_id: int, token: str, extension: str) -> str:
    return f"thumbs/{user_id}/{token}.{extension}"


class Avatar(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="avatar"
    )
    # The site stores the files itself (see avatars.services); the fields keep the keys.
    image = models.FileField(storage=avatar_storage, max_length=255)
    thumbnail = models.FileField(storage=thumb_storage, max_length=255)
    content_type = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text="Bytes of the original.")
    thumb_width = models.PositiveIntegerField()
    thumb_height = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated"]

    def __str__(self) -> str:
        return f"Avatar of {self.user}"

    def stored_files(self) -> list[tuple[Storage, str]]:
        """(storage, name) of each file this record points to."""
        return [(f.storage, f.name) for f in (self.image, self.thumbnail) if f.name]
