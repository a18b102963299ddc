"""The URLconf of the projects in storage_stubs: the serve view under /media/, and the
site's pages (its error pages link to them)."""

from django.urls import include, path

urlpatterns = [
    path("media/", include("django_mogilefs.urls")),
    path("", include("avatars.urls")),
]
