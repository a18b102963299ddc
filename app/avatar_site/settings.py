"""Settings of the sample avatar site, read from the environment (12-factor).

Every variable has a default fit for a developer's machine; see the table in the
project README. Production-only requirements (a secret key when DEBUG is off) fail
loudly at start-up rather than at the first request.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from . import env

BASE_DIR = Path(__file__).resolve().parent.parent  # app/
PROJECT_DIR = BASE_DIR.parent  # the repository (or image) root

# -- core ------------------------------------------------------------------------

DEBUG = env.parse_bool(env.get("DJANGO_DEBUG"), False, name="DJANGO_DEBUG")

SECRET_KEY = env.get("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(50))")'
        )
    SECRET_KEY = "django-insecure-dev-only-avatar-site-key-do-not-use-in-production"

ALLOWED_HOSTS = env.parse_list(env.get("DJANGO_ALLOWED_HOSTS"), ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.parse_list(env.get("DJANGO_CSRF_TRUSTED_ORIGINS"), [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The storage backend's management command (mogilefs_copy) and nothing else.
    "django_mogilefs",
    "avatars",
]

MIDDLEWARE = [
    # Liveness answers first: no host check, no session, no database.
    "avatar_site.middleware.HealthCheckMiddleware",
    # /metrics for Prometheus: also before the host check, refused through Perlbal.
    "django_mogilefs.metrics_view.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Perlbal's requests for stored files never get this far (wsgi.py): only the rest of
    # MOGILEFS_MEDIA_URL (a browser straight at the app, a 404) reaches the serve view.
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Refuses oversized bodies before anything reads them: no middleware above reads
    # the body when called (CSRF reads request.POST in process_view, which runs after
    # every middleware's __call__). After auth, so its page shows who is logged in.
    "avatar_site.middleware.RequestSizeLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "avatar_site.urls"
WSGI_APPLICATION = "avatar_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# -- database and cache ----------------------------------------------------------

DATABASE_URL = env.get("DATABASE_URL", "sqlite:///var/db.sqlite3")
DATABASES = {"default": env.parse_database_url(DATABASE_URL, base_dir=PROJECT_DIR)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    if DATABASES["default"]["NAME"] != ":memory:":
        # A read-only image: the error will name the path when the database is opened.
        with contextlib.suppress(OSError):
            Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.parse_int(
        env.get("DATABASE_CONN_MAX_AGE"), 60, name="DATABASE_CONN_MAX_AGE"
    )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.parse_cache(env.get("CACHE_URL"), env.get("MEMCACHED_LOCATION"))}

# Sessions in the cache, written through to the database: a memcached restart logs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# -- auth ------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "avatar-edit"
LOGOUT_REDIRECT_URL = "home"

# -- i18n ------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# -- static files ----------------------------------------------------------------
# Served by Django itself (avatar_site.urls), so gunicorn needs no nginx in front:
# from STATIC_ROOT after ``collectstatic`` when it exists, else from the apps' static/.

STATIC_URL = "static/"
STATIC_ROOT = Path(env.get("DJANGO_STATIC_ROOT", str(PROJECT_DIR / "var" / "static")))
SERVE_STATIC = env.parse_bool(env.get("DJANGO_SERVE_STATIC"), True, name="DJANGO_SERVE_STATIC")

# -- MogileFS ----------------------------------------------------------------------
# Every storage option is a setting here (the package README's table); each STORAGES
# alias below adds only its class. The storage checks them all (django_mogilefs.conf).

MOGILEFS_TRACKERS = env.parse_trackers(env.get("MOGILEFS_TRACKERS"), ["127.0.0.1:7001"])
MOGILEFS_DOMAIN = env.get("MOGILEFS_DOMAIN", "avatars")
# The storage adds the slash if it is missing (and urls.py follows the same rule).
MOGILEFS_MEDIA_URL = env.get("MOGILEFS_MEDIA_URL", "/media/")
SERVE_WITH_PERLBAL = env.parse_bool(env.get("SERVE_WITH_PERLBAL"), True, name="SERVE_WITH_PERLBAL")
# Avatar keys carry a random token and are never rewritten, so their URLs are immutable:
# browsers may keep them for a year, and Perlbal may cache their paths for an hour.
MOGILEFS_CACHE_CONTROL = env.get("MOGILEFS_CACHE_CONTROL", "public, max-age=31536000, immutable")
MOGILEFS_REPROXY_CACHE_FOR = env.parse_int(
    env.get("MOGILEFS_REPROXY_CACHE_FOR"), 3600, name="MOGILEFS_REPROXY_CACHE_FOR"
)
MOGILEFS_PATH_CACHE_TIMEOUT = env.parse_int(
    env.get("MOGILEFS_PATH_CACHE_TIMEOUT"), 3600, name="MOGILEFS_PATH_CACHE_TIMEOUT"
)
# Each gunicorn worker also keeps the paths it looked up for this long (0 turns it off):
# a file Perlbal's reproxy cache misses then costs no memcached round trip either.
MOGILEFS_LOCAL_PATH_CACHE_TIMEOUT = env.parse_int(
    env.get("MOGILEFS_LOCAL_PATH_CACHE_TIMEOUT"), 10, name="MOGILEFS_LOCAL_PATH_CACHE_TIMEOUT"
)
# Seconds to wait for a tracker's answer. A tracker lost mid-request whose reset never
# arrives (a stopped container) costs this once before the next tracker is asked; the
# site sends only queries, which a tracker answers in milliseconds (admin changes, which
# wait for a monitor round, are bootstrap's, with its own timeout).
MOGILEFS_TIMEOUT = env.parse_int(env.get("MOGILEFS_TIMEOUT"), 3, name="MOGILEFS_TIMEOUT", minimum=1)
# Only these peers may be answered with storage URLs (X-REPROXY-URL): the Perlbal in front.
MOGILEFS_REPROXY_FROM = env.parse_list(
    env.get("MOGILEFS_REPROXY_FROM"), ["127.0.0.1/32", "::1/128"]
)
# Prometheus metrics (django_mogilefs.metrics_view): the path ("" turns it off), who may
# scrape it (never through Perlbal), and how long tracker answers are reused.
MOGILEFS_METRICS_PATH = env.get("MOGILEFS_METRICS_PATH", "/metrics")
MOGILEFS_METRICS_ALLOW_FROM = env.parse_list(
    env.get("MOGILEFS_METRICS_ALLOW_FROM"),
    ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
MOGILEFS_METRICS_CACHE_SECONDS = env.parse_int(
    env.get("MOGILEFS_METRICS_CACHE_SECONDS"), 15, name="MOGILEFS_METRICS_CACHE_SECONDS"
)
MOGILEFS_AVATAR_CLASS = env.get("MOGILEFS_AVATAR_CLASS", "avatar")
MOGILEFS_THUMB_CLASS = env.get("MOGILEFS_THUMB_CLASS", "thumb")
# The staff status page probes each device's usage file as the tracker's monitor does
# (all in parallel, at most twice this long in all), and asks create_open where a new
# file would go: see ClusterAdmin.write_destinations for what that leaves behind.
STATUS_PROBE_TIMEOUT_MS = env.parse_int(
    env.get("STATUS_PROBE_TIMEOUT_MS"), 1000, name="STATUS_PROBE_TIMEOUT_MS", minimum=100
)
STATUS_ASK_CREATE_OPEN = env.parse_bool(
    env.get("STATUS_ASK_CREATE_OPEN"), True, name="STATUS_ASK_CREATE_OPEN"
)
# What the page keeps in the cache, for every worker: the create_open answer and the
# copies of a file still short of them, this long (the tracker's monitor test-writes a
# device every 15 s); the copies of a file that has them all, this long.
STATUS_CACHE_SECONDS = env.parse_int(
    env.get("STATUS_CACHE_SECONDS"), 15, name="STATUS_CACHE_SECONDS", minimum=1
)
STATUS_COMPLETE_CACHE_SECONDS = env.parse_int(
    env.get("STATUS_COMPLETE_CACHE_SECONDS"), 600, name="STATUS_COMPLETE_CACHE_SECONDS", minimum=1
)


def _mogilefs(**options: object) -> dict:
    return {"BACKEND": "django_mogilefs.storage.MogileFSStorage", "OPTIONS": options}


STORAGES = {
    # No local media at all: Django's default storage is the domain's default class.
    "default": _mogilefs(),
    "mogilefs": _mogilefs(),
    # One alias per MogileFS class; the Avatar fields pick theirs by alias
    # (avatars/storages.py). Their keys carry a random token (avatars.models.new_token),
    # so a save need not ask the tracker whether the name is taken.
    "avatars": _mogilefs(mogile_class=MOGILEFS_AVATAR_CLASS, allow_overwrite=True),
    "thumbs": _mogilefs(mogile_class=MOGILEFS_THUMB_CLASS, allow_overwrite=True),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# -- uploads -----------------------------------------------------------------------

AVATAR_MAX_BYTES = env.parse_size(env.get("AVATAR_MAX_BYTES"), 5 * 1024**2, name="AVATAR_MAX_BYTES")
AVATAR_MAX_PIXELS = env.parse_int(
    env.get("AVATAR_MAX_PIXELS"), 16_000_000, name="AVATAR_MAX_PIXELS", minimum=1
)
# The side of the square thumbnails, in pixels: twice the 128 CSS pixels they are
# shown at, so they stay sharp on 2x (retina) screens.
AVATAR_THUMB_SIZE = env.parse_int(
    env.get("AVATAR_THUMB_SIZE"), 256, name="AVATAR_THUMB_SIZE", minimum=16
)
# Whole request bodies above this are refused with 413 before they are parsed
# (the file plus room for the multipart framing and the form fields).
REQUEST_MAX_BYTES = AVATAR_MAX_BYTES + 256 * 1024
# Uploads up to the avatar limit stay in memory; bigger ones never get this far.
FILE_UPLOAD_MAX_MEMORY_SIZE = AVATAR_MAX_BYTES
# Non-file form data: a login or sign-up form is tiny.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1

# -- security ----------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.parse_bool(
    env.get("DJANGO_SECURE_COOKIES"), False, name="DJANGO_SECURE_COOKIES"
)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS terminator that sets X-Forwarded-Proto (and overwrites a client's):
# trust it for request.is_secure(). Perlbal passes the header through unchanged, so
# turn this on only when every request reaches Perlbal through that terminator.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.parse_bool(
        env.get("DJANGO_SECURE_PROXY_SSL_HEADER"), False, name="DJANGO_SECURE_PROXY_SSL_HEADER"
    )
    else None
)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# -- logging: everything to stdout ---------------------------------------------------

LOG_LEVEL = (env.get("DJANGO_LOG_LEVEL", "INFO") or "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
    },
}
