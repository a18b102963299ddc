"""Mount the serve view under the media prefix.

``path(settings.MOGILEFS_MEDIA_URL.lstrip("/"), include("django_mogilefs.urls"))``
"""

from django.urls import path

from .views import serve

app_name = "django_mogilefs"
urlpatterns = [path("<path:name>", serve, name="serve")]
