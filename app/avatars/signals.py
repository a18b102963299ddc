"""Files follow their record: deleting an Avatar (directly, or with its user) deletes them."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Avatar
from .services import delete_files


@receiver(post_delete, sender=Avatar, dispatch_uid="avatars.delete_files")
def delete_avatar_files(sender, instance: Avatar, using: str, **kwargs) -> None:
    # Only once the deletion is committed: a rolled-back delete keeps its files.
    transaction.on_commit(partial(delete_files, instance.stored_files()), using=using)
