"""The site's storages as Django's InMemoryStorage, so no tracker is needed: for the site's
tests (tests/site/conftest.py) and the avatar flow on MySQL (tests/site_mysql)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MEMORY = "django.core.files.storage.InMemoryStorage"
STORAGES = {
    "default": {"BACKEND": MEMORY},
    "avatars": {"BACKEND": MEMORY, "OPTIONS": {"base_url": "/media/"}},
    "thumbs": {"BACKEND": MEMORY, "OPTIONS": {"base_url": "/media/"}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def walk(storage: Any, path: str = "") -> Iterator[str]:
    """Every file name in ``storage`` below ``path``."""
    dirs, files = storage.listdir(path)
    for name in files:
        yield f"{path}/{name}" if path else name
    for d in dirs:
        yield from walk(storage, f"{path}/{d}" if path else d)
