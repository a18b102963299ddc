"""Per-field MogileFS classes without subclassing the backend.

``STORAGES`` has one alias per MogileFS class (``avatars`` -> class ``avatar``,
``thumbs`` -> class ``thumb``). A ``FileField`` evaluates a ``storage=`` callable
once, when the model class is created; if it returned ``storages["avatars"]``
itself, the backend would be built at import time and ``override_settings(STORAGES=...)``
would never reach the field. :class:`AliasedStorage` is a thin stand-in that looks
the alias up at each call instead, so the backend is built on first use and
tests can swap it. It forwards the Django storage API and nothing else is needed.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import Storage, storages


class AliasedStorage(Storage):
    """Forwards every storage call to ``storages[alias]``, resolved at call time."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @property
    def backend(self) -> Storage:
        return storages[self.alias]

    def __getattr__(self, name: str) -> Any:
        # Backend extras (e.g. MogileFSStorage.file_info). Only reached for names
        # Storage itself does not define; never for the alias being set up.
        if name.startswith("__") or name == "alias":
            raise AttributeError(name)
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"<AliasedStorage {self.alias!r}>"

    # The storage API, forwarded whole so the backend's own overrides apply.
    def open(self, name, mode="rb"):
        return self.backend.open(name, mode)

    def save(self, name, content, max_length=None):
        return self.backend.save(name, content, max_length=max_length)

    def get_valid_name(self, name):
        return self.backend.get_valid_name(name)

    def get_alternative_name(self, file_root, file_ext):
        return self.backend.get_alternative_name(file_root, file_ext)

    def get_available_name(self, name, max_length=None):
        return self.backend.get_available_name(name, max_length=max_length)

    def generate_filename(self, filename):
        return self.backend.generate_filename(filename)

    def path(self, name):
        return self.backend.path(name)

    def delete(self, name):
        return self.backend.delete(name)

    def exists(self, name):
        return self.backend.exists(name)

    def listdir(self, path):
        return self.backend.listdir(path)

    def size(self, name):
        return self.backend.size(name)

    def url(self, name):
        return self.backend.url(name)

    def get_accessed_time(self, name):
        return self.backend.get_accessed_time(name)

    def get_created_time(self, name):
        return self.backend.get_created_time(name)

    def get_modified_time(self, name):
        return self.backend.get_modified_time(name)


def avatar_storage() -> Storage:
    """Storage of the originals: the ``avatars`` alias (MogileFS class ``avatar``)."""
    return AliasedStorage("avatars")


def thumb_storage() -> Storage:
    """Storage of the thumbnails: the ``thumbs`` alias (MogileFS class ``thumb``)."""
    return AliasedStorage("thumbs")
