"""The environment of whatever the project starts itself: the caller's, minus its settings.

A run against a real cluster exports ``MOGILEFS_TRACKERS`` and ``MOGILEFS_DOMAIN``, and a
developer's shell may export ``DJANGO_*``, ``PERLBAL_*``, ``AVATAR_*``... The native stack
(scripts/devstack) and a test that builds its own cluster, Perlbal, site or script run must
not hand those on: their processes get exactly the settings they name, on top of an
environment without any of the project's. ``PATH``, ``HOME``, ``TMPDIR`` and the like stay.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

# What the site, gunicorn, granian (app/start-media), perlbal/start, the fake tracker, the
# mogile/ and mysql/ scripts and scripts/bootstrap.py read; PYTHONPATH too (the package is
# installed, the site and the scripts are found from their own directories).
SETTING_PREFIXES = (
    "AVATAR_",
    "CACHE_URL",
    "DATABASE_",
    "DJANGO_",
    "FAKETRACKER_",
    "GRANIAN_",
    "GUNICORN_",
    "HEALTHCHECK_",
    "MEDIA_",
    "MEMCACHED_",
    "MOGILE",  # MOGILEFS_*, MOGILEFSD_*, MOGILE_*
    "MOGSTORED",  # MOGSTORED_*, MOGSTORED<N>_ADDRESS
    "PERLBAL_",
    "PYTHONPATH",
    "SERVE_WITH_PERLBAL",
    "SITE_DB_",
    "WAIT_TIMEOUT",
)


def is_setting(name: str) -> bool:
    """Whether the project reads ``name`` (so an outer value must not leak into a test)."""
    return name.startswith(SETTING_PREFIXES)


def own_environ(environ: Mapping[str, str] | None = None, **settings: str) -> dict[str, str]:
    """``environ`` (``os.environ`` by default) without the project's settings, plus ``settings``."""
    base = os.environ if environ is None else environ
    return {**{k: v for k, v in base.items() if not is_setting(k)}, **settings}


@contextlib.contextmanager
def own_os_environ(**settings: str) -> Iterator[None]:
    """``os.environ`` as :func:`own_environ` has it, for code that reads it in this process.

    The whole environment is put back afterwards (the ``mogile_cluster`` fixture, for
    one, reads ``MOGILEFS_TRACKERS`` later).
    """
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(own_environ(saved, **settings))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
