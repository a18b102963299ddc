"""Django settings for the test run: the sample site's defaults, plus test-safe values.

The settings module reads the environment; the shell's own DJANGO_*, MOGILEFS_*,
AVATAR_*... (for example a real cluster's MOGILEFS_DOMAIN for the integration suite)
must not change what the site tests see, so it is read from an environment without them.
"""

from ownenv import own_os_environ

with own_os_environ(DJANGO_SECRET_KEY="tests-only-not-secret", DJANGO_DEBUG="false"):
    from avatar_site.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
