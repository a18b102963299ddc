"""Sign up, log in, log out."""

from __future__ import annotations

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


def test_log_in_with_a_wrong_password_says_so(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert client.get("/avatar/").status_code == 302


def test_log_out_needs_post(alice):
    assert alice.get("/accounts/logout/").status_code == 405
    assert alice.get("/avatar/").status_code == 200  # still logged in


def test_csrf_is_enforced_on_log_out_and_upload(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/accounts/logout/").status_code == 403
    assert client.post("/avatar/", {}).status_code == 403
    assert client.post("/avatar/remove/").status_code == 403
