from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("gallery/", views.gallery, name="gallery"),
    path("u/<str:username>/", views.profile, name="profile"),
    path("avatar/", views.avatar_edit, name="avatar-edit"),
    path("avatar/remove/", views.avatar_remove, name="avatar-remove"),
    path("status/", views.cluster_status, name="cluster-status"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
]
