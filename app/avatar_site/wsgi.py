"""WSGI entry point: ``gunicorn avatar_site.wsgi`` (with app/ on the Python path)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "avatar_site.settings")

application = get_wsgi_application()
