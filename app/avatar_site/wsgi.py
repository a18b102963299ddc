"""WSGI entry point (with app/ on the Python path): the site's gunicorn (``start``) and
the media tier's granian (``start-media``) both serve it.

Perlbal's requests for avatars it has not cached are answered below Django's request
cycle (django_mogilefs.wsgi.ReproxyApplication, the one fast path); every other request,
the rest of MOGILEFS_MEDIA_URL included, goes to Django and its URLconf.
"""

import os

from django.core.wsgi import get_wsgi_application
from django_mogilefs.wsgi import ReproxyApplication

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "avatar_site.settings")

application = ReproxyApplication(get_wsgi_application())
