"""The storage backend's stand-ins: a stub cluster that keeps files, and the settings
of a project that uses it (shared by the storage, serve view and WSGI tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.core.files.base import ContentFile
from django.test import override_settings
from django_mogilefs.storage import MogileFSStorage

from .stubs import Cluster, ok

LOCMEM = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "storage-tests",
    }
}
BACKEND = "django_mogilefs.storage.MogileFSStorage"
PERLBAL = {"HTTP_X_PROXY_CAPABILITIES": "reproxy-file"}
SUBCLASS = "unit.storage_stubs.ThumbStorage"


class ThumbStorage(MogileFSStorage):
    """A subclass with defaults of its own, as a project might write one."""

    def get_default_settings(self):
        return {**super().get_default_settings(), "mogile_class": "thumb"}


class FileCluster(Cluster):
    """The stub cluster plus a set of existing keys for file_info/list_keys/delete."""

    def __init__(self):
        self.existing = {}
        super().__init__()

    def answer(self, cmd, args):
        key = args.get("key")
        if cmd == "file_info":
            if key not in self.existing:
                return b"ERR unknown_key unknown_key\r\n"
            return ok(
                fid=7,
                key=key,
                domain="testdom",
                length=len(self.existing[key]),
                devcount=1,
                **{"class": "thumb"},
            )
        if cmd == "create_close":
            self.existing[key] = self.node.files[args["path"][len(self.node.base) :]]
        if cmd == "delete" and self.existing.pop(key, None) is None:
            return b"ERR unknown_key unknown_key\r\n"
        if cmd == "get_paths" and key not in self.existing:
            return b"ERR unknown_key unknown_key\r\n"
        if cmd == "list_keys":
            prefix, after = args.get("prefix", ""), args.get("after", "")
            keys = sorted(k for k in self.existing if k.startswith(prefix) and k > after)
            if not keys:
                return b"ERR none_match No+keys+match\r\n"
            return ok(
                key_count=len(keys),
                next_after=keys[-1],
                **{f"key_{i}": k for i, k in enumerate(keys, 1)},
            )
        return super().answer(cmd, args)


def storages_for(trackers, backend: str = BACKEND, **options):
    """STORAGES whose first MogileFS storage is ``media``, configured by its OPTIONS."""
    return {
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "media": {
            "BACKEND": backend,
            "OPTIONS": {"trackers": trackers, "domain": "testdom", **options},
        },
    }


@contextlib.contextmanager
def options_only(**overrides: object) -> Iterator[None]:
    """These settings, and none of the storage's own (``MOGILEFS_*``,
    ``SERVE_WITH_PERLBAL``): a project that configures it through ``OPTIONS`` alone."""
    with override_settings(**overrides):
        for name in dir(settings):
            if name.startswith("MOGILEFS_") or name == "SERVE_WITH_PERLBAL":
                delattr(settings, name)
        yield


@contextlib.contextmanager
def stored_file(
    cluster: FileCluster, backend: str = BACKEND, **settings: object
) -> Iterator[FileCluster]:
    """``avatars/u1.png`` (``PNGDATA``) stored in storage ``media`` on ``cluster``, its
    copies on the node, in a project configured through ``OPTIONS`` only (with a local
    cache, the serve view under /media/, and these settings)."""
    configured = storages_for([cluster.tracker.address], backend)
    project = {"CACHES": LOCMEM, "STORAGES": configured, "ROOT_URLCONF": "unit.media_urls"}
    with options_only(**{**project, **settings}):
        from django.core.cache import caches
        from django.core.files.storage import storages

        caches["default"].clear()  # other tests' stub clusters used the same names
        storages["media"].save("avatars/u1.png", ContentFile(b"PNGDATA"))
        for d in cluster.dests:
            cluster.node.files[d] = b"PNGDATA"
        yield cluster
