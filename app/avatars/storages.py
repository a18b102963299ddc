"""The storages of the Avatar fields: one ``STORAGES`` alias per MogileFS class
(``avatars`` -> class ``avatar``, ``thumbs`` -> class ``thumb``), looked up at each call.

This is the package's recipe for one class per field (src/README.md, "One MogileFS
class per field"; django_mogilefs.aliases): tests swap the aliases with
``override_settings(STORAGES=...)`` and the fields follow.
"""

from __future__ import annotations

from django.core.files.storage import Storage
from django_mogilefs.aliases import AliasedStorage


def avatar_storage() -> Storage:
    """Storage of the originals: the ``avatars`` alias (MogileFS class ``avatar``)."""
    return AliasedStorage("avatars")


def thumb_storage() -> Storage:
    """Storage of the thumbnails: the ``thumbs`` alias (MogileFS class ``thumb``)."""
    return AliasedStorage("thumbs")
