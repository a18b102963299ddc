"""One MogileFS class per field: a ``STORAGES`` alias, looked up at each call.

Give each class its alias in ``STORAGES`` (with its ``mogile_class``) and each field a
module-level callable that returns ``AliasedStorage(alias)``::

    def thumbnails():  # migrations record this name, not the storage
        return AliasedStorage("thumbnails")

    class Photo(models.Model):
        thumbnail = models.ImageField(storage=thumbnails)

A ``FileField`` calls its ``storage=`` callable once, when the model class is created.
Had it returned ``storages["thumbnails"]`` itself, that backend would stay the field's
for good: ``override_settings(STORAGES=...)`` and the alias's ``OPTIONS`` in a test's
settings would never reach it. ``AliasedStorage`` asks ``storages[alias]`` at each
call instead, so the field always uses what ``STORAGES`` says now.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import Storage, storages
from django.utils.deconstruct import deconstructible


@deconstructible(path="django_mogilefs.aliases.AliasedStorage")
class AliasedStorage(Storage):
    """Forwards every storage call to ``storages[alias]``, resolved at call time."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    @property
    def backend(self) -> Storage:
        return storages[self.alias]

    def __getattr__(self, name: str) -> Any:
        # Backend extras (MogileFSStorage.config, file_info...). Only reached for names
        # Storage itself does not define; never for the alias being set up.
        if name.startswith("__") or name == "alias":
            raise AttributeError(name)
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"<AliasedStorage {self.alias!r}>"

    # The storage API, forwarded whole so that the backend's own overrides apply.
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

    def is_name_available(self, name, max_length=None):
        return self.backend.is_name_available(name, max_length=max_length)

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
