"""Fixtures for the avatar site's tests.

Django is configured for the whole run by ``DJANGO_SETTINGS_MODULE = "testsettings"``
(pyproject.toml), which is ``avatar_site.settings`` with test-safe environment
defaults. Here every test gets Django's ``InMemoryStorage`` in place of MogileFS
for the ``avatars`` and ``thumbs`` aliases, so no tracker is needed.

This folder has no ``__init__.py`` on purpose: as a package it would be named
``site`` and clash with the standard library's ``site`` module.
"""

from __future__ import annotations

import copy
import io
import struct
import zlib
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.core.cache import caches
from django.core.files.storage import InMemoryStorage, storages
from memory_storages import STORAGES, walk
from PIL import Image


@dataclass
class MemoryStorages:
    avatars: InMemoryStorage
    thumbs: InMemoryStorage

    def all_files(self) -> set[str]:
        """Every file name in both storages."""
        return set(walk(self.avatars)) | set(walk(self.thumbs))


@pytest.fixture(autouse=True)
def memory_storages(settings) -> MemoryStorages:
    """InMemoryStorage for every alias; the site reaches it through ``storages[alias]``."""
    settings.STORAGES = copy.deepcopy(STORAGES)  # a test may change its copy
    return MemoryStorages(avatars=storages["avatars"], thumbs=storages["thumbs"])


# -- images ---------------------------------------------------------------------------


def image_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), mode: str = "RGB", **save_args
) -> bytes:
    """A real image: left half red, right half blue (transparent blue when mode has alpha)."""
    im = Image.new(mode, size)
    w, h = size
    alpha = "A" in mode
    im.paste((255, 0, 0, 255) if alpha else (255, 0, 0), (0, 0, w // 2, h))
    im.paste((0, 0, 255, 0) if alpha else (0, 0, 255), (w // 2, 0, w, h))
    out = io.BytesIO()
    im.save(out, fmt, **save_args)
    return out.getvalue()


def noisy_jpeg(size: tuple[int, int] = (256, 256)) -> bytes:
    """A JPEG with many bytes of entropy-coded data (so cutting it really truncates pixels)."""
    im = Image.frombytes("RGB", size, bytes((i * 7919) % 251 for i in range(size[0] * size[1] * 3)))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=95)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # One scanline's worth of zeros: decoding would need width*height*3 bytes.
    idat = zlib.compress(b"\0" * (width * 3 + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def status_cluster(monkeypatch):
    """``use(admin, domain, cls)``: the status page talks to ``admin`` as the configured
    storage's cluster (domain ``avatars``, class ``avatar`` unless said), with an empty
    cache (the page keeps its create_open answer and the files' copies there)."""
    from avatars import status

    caches["default"].clear()

    def use(admin, domain: str = "avatars", cls: str = "avatar"):
        mogilefs = status.MogileFS(domain, cls, lambda: admin)
        monkeypatch.setattr(status, "mogilefs_of", lambda storage: mogilefs)
        return admin

    return use


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="correct horse battery")


@pytest.fixture
def alice(client, user):
    """A test client logged in as alice."""
    client.force_login(user)
    return client


@pytest.fixture
def img() -> SimpleNamespace:
    """The image helpers above (test modules cannot import this conftest by name)."""
    return SimpleNamespace(bytes=image_bytes, noisy_jpeg=noisy_jpeg, bomb=png_header_only)
