from __future__ import annotations

import logging
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import services, status
from .forms import AvatarForm, SignUpForm
from .models import Avatar

logger = logging.getLogger(__name__)

GALLERY_PAGE_SIZE = 48


def staff_required(view):
    """Anonymous users go to the login page, which says the page is for staff.

    A logged-in user who is not staff gets a 403 page saying so, with a button that logs
    out and goes to the login page: the login page itself would send them straight back
    here (it redirects a logged-in user to ``next``).
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            return render(request, "avatars/staff_only.html", status=403)
        return view(request, *args, **kwargs)

    wrapper.staff_only = True  # read by LoginView (wraps copies it to outer decorators)
    return wrapper


def is_staff_page(url: str) -> bool:
    """Whether ``url`` is one of this site's pages for staff only."""
    if not url:
        return False
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        return False
    return getattr(match.func, "staff_only", False)


def home(request: HttpRequest) -> HttpResponse:
    recent = Avatar.objects.select_related("user").order_by("-updated")[:12]
    return render(request, "avatars/home.html", {"recent": recent})


def gallery(request: HttpRequest) -> HttpResponse:
    avatars = Avatar.objects.select_related("user").order_by("-updated")
    page = Paginator(avatars, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "avatars/gallery.html", {"page": page})


def profile(request: HttpRequest, username: str) -> HttpResponse:
    user = get_object_or_404(get_user_model(), username=username, is_active=True)
    avatar = Avatar.objects.filter(user=user).first()
    return render(request, "avatars/profile.html", {"profile_user": user, "avatar": avatar})


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("avatar-edit")
    form = SignUpForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.get_username()}! Now pick an avatar.")
            return redirect("avatar-edit")
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def avatar_edit(request: HttpRequest) -> HttpResponse:
    """Show the current avatar with the upload form; POST uploads (or replaces) it."""
    current = Avatar.objects.filter(user=request.user).first()
    if request.method != "POST":
        return render(request, "avatars/edit.html", {"form": AvatarForm(), "avatar": current})

    form = AvatarForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "avatars/edit.html", {"form": form, "avatar": current}, status=400)
    try:
        services.set_avatar(request.user, form.cleaned_data["image"])
    except services.StorageUnavailable:
        form.add_error(
            None,
            "The file store is unavailable right now, so your avatar was not changed. "
            "Please try again in a minute.",
        )
        return _unavailable(request, form, current)
    except DatabaseError:
        form.add_error(
            None, "Your avatar could not be saved right now and was not changed. Please try again."
        )
        return _unavailable(request, form, current)
    messages.success(request, "Your avatar has been updated.")
    return redirect("profile", username=request.user.get_username())


def _unavailable(request: HttpRequest, form: AvatarForm, current: Avatar | None) -> HttpResponse:
    response = render(request, "avatars/edit.html", {"form": form, "avatar": current}, status=503)
    response["Retry-After"] = "60"
    return response


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def avatar_remove(request: HttpRequest) -> HttpResponse:
    """GET asks for confirmation (a plain form, no JavaScript needed); POST removes."""
    if request.method != "POST":
        current = Avatar.objects.filter(user=request.user).first()
        if current is None:
            messages.info(request, "You have no avatar to remove.")
            return redirect("avatar-edit")
        return render(request, "avatars/remove.html", {"avatar": current})
    try:
        removed = services.remove_avatar(request.user)
    except DatabaseError:
        logger.exception("Removing the avatar of user %s failed", request.user.pk)
        messages.error(request, "Your avatar could not be removed right now. Please try again.")
        return redirect("avatar-edit")
    if removed:
        messages.success(request, "Your avatar has been removed.")
    else:
        messages.info(request, "You had no avatar to remove.")
    return redirect("avatar-edit")


@never_cache
@staff_required
def cluster_status(request: HttpRequest) -> HttpResponse:
    try:
        context = status.cluster_status()
    except Exception as exc:
        logger.exception("Cluster status: the tracker could not be asked")
        return render(
            request,
            "avatars/status.html",
            {"error": f"The MogileFS tracker could not be reached: {exc}"},
            status=503,
        )
    return render(request, "avatars/status.html", context)


def request_too_large(request: HttpRequest, received: int | None = None) -> HttpResponse:
    """The answer to a request body refused unread: ``received`` bytes over REQUEST_MAX_BYTES
    (avatar_site.middleware), or None for form fields over DATA_UPLOAD_MAX_MEMORY_SIZE
    (avatar_site.views.bad_request).

    An upload ends on the upload form with the reason and the limits, ready for the next
    try; any other request gets the site's page saying so. Nothing was read, so nothing
    was stored.
    """
    if received is None:
        reason = (
            f"The form sent more than {filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)} of "
            "form fields besides the image, so it was not read and nothing was stored."
        )
    else:
        reason = (
            f"That upload was too large ({filesizeformat(received)}) and was not stored. "
            f"Images may be at most {filesizeformat(settings.AVATAR_MAX_BYTES)}."
        )
    if request.user.is_authenticated and request.path_info == reverse("avatar-edit"):
        form = AvatarForm.refused(reason)
        current = Avatar.objects.filter(user=request.user).first()
        return render(request, "avatars/edit.html", {"form": form, "avatar": current}, status=413)
    return render(request, "request_too_large.html", {"reason": reason}, status=413)


class LoginView(auth_views.LoginView):
    """Django's, saying so when the page asked for (``next``) is for staff only."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context["for_staff"] = is_staff_page(self.get_redirect_url())
        return context


class LogoutView(auth_views.LogoutView):
    """Logging out stays a POST (CSRF-checked); a GET shows a page with the button.

    Django's view answers a GET with an empty 405, which browsers show as their own
    error page when someone follows a link or types the address.
    """

    http_method_names = ["get", "head", "post", "options"]

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return render(request, "registration/logout.html")

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        # Added after the session is flushed, so it survives to the next page.
        messages.success(request, "You have been logged out.")
        return response
