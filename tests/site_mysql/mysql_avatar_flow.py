"""The avatar flow against the site's configured database, in a process of its own.

``python mysql_avatar_flow.py REPORT.json SPEC.json`` -- run by test_mysql_site.py
through ``app/entrypoint``, with the app container's environment from compose.yaml
(``DATABASE_URL`` + ``DATABASE_PASSWORD_FILE``), because the test session's Django is
already configured for SQLite. Django is set up from ``avatar_site.settings``; only
``STORAGES`` is swapped for ``InMemoryStorage``, so no tracker is needed.

SPEC names two users to create: ``kept`` gets an avatar, then a replacement (and keeps
it, for the tests to read from outside); ``removed`` gets one, then loses it, twice.
What the process sees, read back from the database and the storages after each step,
goes to REPORT.json; the tests judge it. Nothing is asserted here.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import django
from memory_storages import STORAGES, walk

AVATAR_FIELDS = (
    "id",
    "user_id",
    "image",
    "thumbnail",
    "content_type",
    "width",
    "height",
    "size",
    "thumb_width",
    "thumb_height",
)


def image_bytes(fmt: str, size: tuple[int, int]) -> bytes:
    from PIL import Image

    im = Image.new("RGB", size, (255, 0, 0))
    im.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    im.save(out, fmt)
    return out.getvalue()


def main(report_path: Path, spec: dict[str, Any]) -> None:
    django.setup()

    from avatars.images import check_image
    from avatars.models import Avatar
    from avatars.services import remove_avatar, set_avatar
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.storage import storages
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    User = get_user_model()
    report: dict[str, Any] = {
        "environ": {
            "DATABASE_URL": os.environ.get("DATABASE_URL"),
            "DATABASE_PASSWORD_FILE": os.environ.get("DATABASE_PASSWORD_FILE"),
        },
        "database": {
            key: settings.DATABASES["default"].get(key)
            for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
        },
    }

    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_USER(), DATABASE(), @@character_set_connection, @@sql_mode")
        user, database, charset, sql_mode = cursor.fetchone()
    report["connection"] = {
        "vendor": connection.vendor,
        "current_user": user,
        "database": database,
        "charset": charset,
        "sql_mode": sql_mode,
    }
    out = io.StringIO()
    try:
        call_command("check", databases=["default"], fail_level="WARNING", stdout=out, stderr=out)
        report["check"] = {"ok": True, "output": out.getvalue()}
    except Exception as exc:
        report["check"] = {"ok": False, "output": out.getvalue() + str(exc)}

    def checked(fmt: str, size: tuple[int, int]):
        return check_image(
            io.BytesIO(image_bytes(fmt, size)),
            max_bytes=settings.AVATAR_MAX_BYTES,
            max_pixels=settings.AVATAR_MAX_PIXELS,
            thumb_size=settings.AVATAR_THUMB_SIZE,
        )

    def observe(user, **extra: Any) -> dict[str, Any]:
        return {
            **extra,
            "rows": list(Avatar.objects.filter(user_id=user.pk).values(*AVATAR_FIELDS)),
            "avatar_files": sorted(walk(storages["avatars"])),
            "thumb_files": sorted(walk(storages["thumbs"])),
        }

    def make_user(fields: dict[str, str]) -> tuple[Any, dict[str, Any]]:
        user = User.objects.create_user(password=None, **fields)
        again = User.objects.get(pk=user.pk)
        found = User.objects.filter(username=fields["username"]).values_list("pk", flat=True)
        return user, {
            "pk": user.pk,
            "read_back": {name: getattr(again, name) for name in fields},
            "found_by_username": list(found),
        }

    steps: dict[str, Any] = {}
    with override_settings(STORAGES=STORAGES):
        report["storage_backends"] = {
            alias: type(storages[alias]).__name__ for alias in ("avatars", "thumbs")
        }

        kept, report["kept_user"] = make_user(spec["kept"])
        set_avatar(kept, checked("JPEG", (64, 48)))
        steps["set"] = observe(kept)
        set_avatar(kept, checked("PNG", (40, 30)))
        steps["replace"] = observe(kept)

        removed, report["removed_user"] = make_user(spec["removed"])
        set_avatar(removed, checked("GIF", (20, 20)))
        steps["set_other"] = observe(removed)
        steps["remove"] = observe(removed, returned=remove_avatar(removed))
        steps["remove_again"] = observe(removed, returned=remove_avatar(removed))
    report["steps"] = steps

    report_path.write_text(
        json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")))
