"""URL map of the avatar site.

/                    home (recent avatars)
/gallery/            recent avatars, paginated
/u/<username>/       a user's profile and avatar
/avatar/             upload, replace or remove your avatar (login required)
/accounts/signup/    sign up; /accounts/login/ and /accounts/logout/ (POST)
/status/             MogileFS cluster status (staff only)
/healthz             liveness: 200 "ok", touches neither database nor tracker
/admin/              Django admin
<MOGILEFS_MEDIA_URL> stored files, served by django_mogilefs (Perlbal reproxy or streaming)
/static/             static files, served by Django (see avatar_site.views.static)
/favicon.ico         the site icon (a static file)
"""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django_mogilefs.conf import serve_prefix

from . import views

handler400 = views.bad_request

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("avatars.urls")),
]

# Under MOGILEFS_MEDIA_URL when that is a path on this site (not another host's URL).
if media := serve_prefix(settings.MOGILEFS_MEDIA_URL):
    urlpatterns.append(path(media.lstrip("/"), include("django_mogilefs.urls")))

if settings.SERVE_STATIC:
    prefix = settings.STATIC_URL.lstrip("/")
    urlpatterns.append(re_path(rf"^{prefix}(?P<path>.+)$", views.static, name="static"))
    urlpatterns.append(path("favicon.ico", views.favicon, name="favicon"))
