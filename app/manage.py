#!/usr/bin/env python
"""Django's command-line utility for the avatar site."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "avatar_site.settings")
    try:
        from django.conf import settings
        from django.core.management import execute_from_command_line

        # The settings check the environment when loaded (and storages their options when
        # first used): a missing or bad setting is one line, not Django's traceback.
        settings.INSTALLED_APPS  # noqa: B018
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        sys.exit(f"{os.path.basename(sys.argv[0])}: {exc}")
    except KeyboardInterrupt:  # Ctrl-C while Django starts, or in a command that lets it out
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
