"""Sign up, log in, log out."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

PASSWORD = "correct horse battery"


def test_sign_up_creates_the_user_and_logs_in(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "bob", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/avatar/"
    user = get_user_model().objects.get(username="bob")
    assert user.check_password(PASSWORD)
    assert not user.is_staff
    assert client.get("/avatar/").status_code == 200  # logged in


def test_sign_up_with_mismatched_passwords_is_a_400_with_the_reason(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "bob", "password1": PASSWORD, "password2": PASSWORD + "!"},
    )
    assert response.status_code == 400
    assert "password fields didn" in response.content.decode()
    assert not get_user_model().objects.filter(username="bob").exists()


def test_sign_up_with_a_taken_username_is_refused(client, user):
    response = client.post(
        "/accounts/signup/",
        {"username": "alice", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


def test_sign_up_page_renders_with_csrf_token(client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_log_in_and_out(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/avatar/"
    assert client.get("/avatar/").status_code == 200

    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    response = client.get("/avatar/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/avatar/")


def messages_of(page: str) -> list[str]:
    """The texts of the site's notices (the messages framework's list) on a page."""
    box = re.search(r'<ul class="messages">(.*?)</ul>', page, re.S)
    return re.findall(r"<li[^>]*>(.*?)</li>", box[1], re.S) if box else []


def test_log_out_says_so_once(alice):
    # The nav's button and the GET page's button both post here.
    response = alice.post("/accounts/logout/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    page = response.content.decode()
    assert messages_of(page) == ["You have been logged out."]
    assert 'href="/accounts/login/"' in page
    assert messages_of(alice.get("/").content.decode()) == []
    assert alice.get("/avatar/").status_code == 302


def test_log_in_with_a_wrong_password_says_so(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert client.get("/avatar/").status_code == 302


def test_log_out_by_get_shows_a_page_with_the_post_button(alice):
    response = alice.get("/accounts/logout/")
    assert response.status_code == 200
    page = response.content.decode()
    main = page[page.index("<main>") :]
    form = re.search(r'<form method="post" action="/accounts/logout/">(.*?)</form>', main, re.S)
    assert form, main
    assert 'name="csrfmiddlewaretoken"' in form[1]
    assert '<button type="submit">Log out</button>' in form[1]
    assert "logged in as <strong>alice</strong>" in main
    assert alice.get("/avatar/").status_code == 200  # a GET does not log out


def test_log_out_page_when_logged_out(client):
    response = client.get("/accounts/logout/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "You are not logged in." in page
    assert 'action="/accounts/logout/"' not in page


def field_markup(page: str, name: str) -> tuple[str, str]:
    """The <input> of field ``name`` and the markup of its error list."""
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    errors = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', page, re.S)
    assert tag and errors, page
    return tag[0], errors[0]


def test_sign_up_errors_are_shown_like_the_upload_forms(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "bob", "password1": PASSWORD, "password2": PASSWORD + "!"},
    )
    page = response.content.decode()
    tag, errors = field_markup(page, "password2")
    assert 'aria-invalid="true"' in tag
    assert 'aria-describedby="id_password2_helptext id_password2_error"' in tag
    assert 'id="id_password2_helptext"' in page
    # In the site's error box, the one the upload form uses.
    assert f'<div class="errors" role="alert">{errors}</div>' in page
    assert "password fields didn" in errors
    assert "aria-invalid" not in re.search(r'<input[^>]*name="username"[^>]*>', page)[0]


def test_log_in_error_is_in_the_error_box(client, user):
    page = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    page = page.content.decode()
    box = re.search(r'<div class="errors" role="alert">(.*?)</div>', page, re.S)
    assert box and "Please enter a correct username and password" in box[1]
    assert page.count('<div class="field">') == 2  # username, password


def test_csrf_is_enforced_on_log_out_and_upload(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/accounts/logout/").status_code == 403
    assert client.post("/avatar/", {}).status_code == 403
    assert client.post("/avatar/remove/").status_code == 403
