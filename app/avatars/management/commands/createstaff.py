"""``manage.py createstaff USERNAME``: a staff user for the cluster status page.

Idempotent, for scripts and containers: creates the user or updates it, sets
``is_staff`` (and ``is_superuser`` with ``--superuser``). The password comes from
the environment variable named by ``--password-env`` (default
``DJANGO_STAFF_PASSWORD``), else is asked for on a terminal; an existing user
keeps its password when none is given.
"""

from __future__ import annotations

import getpass
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = "Create or update a staff user (for /status/). Password from $DJANGO_STAFF_PASSWORD."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-env",
            default="DJANGO_STAFF_PASSWORD",
            help="environment variable holding the password (default: %(default)s)",
        )
        parser.add_argument(
            "--superuser", action="store_true", help="also make the user a superuser"
        )
        parser.add_argument(
            "--skip-validation",
            action="store_true",
            help="do not run the password validators (demo passwords)",
        )

    def handle(self, *args, username: str, email: str, password_env: str, **options) -> None:
        User = get_user_model()
        password = os.environ.get(password_env) or None
        with transaction.atomic():
            user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
            created = user is None
            if created:
                user = User(**{User.USERNAME_FIELD: username})
            if password is None and created:
                password = self._ask_password()
            if password is not None:
                if not options["skip_validation"]:
                    try:
                        validate_password(password, user)
                    except ValidationError as exc:
                        raise CommandError("; ".join(exc.messages)) from None
                user.set_password(password)
            if email:
                user.email = email
            user.is_staff = True
            user.is_active = True
            if options["superuser"]:
                user.is_superuser = True
            user.save()
        verb = "Created" if created else "Updated"
        kind = "superuser" if user.is_superuser else "staff user"
        self.stdout.write(self.style.SUCCESS(f"{verb} {kind} {username!r}."))

    def _ask_password(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError(
                "No password: set $DJANGO_STAFF_PASSWORD (or --password-env) for a new user."
            )
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords do not match.")
        if not first:
            raise CommandError("The password must not be empty.")
        return first
