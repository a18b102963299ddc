"""The pages: home, gallery, profile, staff status; health check, static files, createstaff."""

from __future__ import annotations

import io
import re

import pytest
from avatars import status as status_module
from avatars.models import Avatar
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django_mogilefs.client import FileInfo
from django_mogilefs.cluster import ClassInfo, DeviceInfo, HostInfo
from PIL import Image
from unit.stubs import closed_port

pytestmark = pytest.mark.unit


@pytest.fixture
def with_avatars(django_user_model, img, django_capture_on_commit_callbacks):
    """Three users, two of them with an avatar (bob's the most recent)."""
    client = Client()
    users = {}
    for name, has_avatar in (("alice", True), ("bob", True), ("carol", False)):
        user = django_user_model.objects.create_user(name, password="correct horse battery")
        users[name] = user
        if has_avatar:
            client.force_login(user)
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(
                    "/avatar/", {"image": SimpleUploadedFile("a.png", img.bytes("PNG"))}
                )
            assert response.status_code == 302
    return users


# -- public pages --------------------------------------------------------------------


@pytest.mark.django_db
def test_home_shows_recent_thumbnails_newest_first(client, with_avatars):
    page = client.get("/").content.decode()
    thumbs = re.findall(r'src="/media/(thumbs/(\d+)/[^"]+)"', page)
    owners = [int(user_id) for _, user_id in thumbs]
    assert owners == [with_avatars["bob"].pk, with_avatars["alice"].pk]
    assert 'href="/u/bob/"' in page
    assert "Sign up" in page


@pytest.mark.django_db
def test_gallery_is_paginated(client, with_avatars, monkeypatch):
    from avatars import views

    monkeypatch.setattr(views, "GALLERY_PAGE_SIZE", 1)
    first = client.get("/gallery/").content.decode()
    assert "Page 1 of 2" in first
    assert "/u/bob/" in first and "/u/alice/" not in first
    second = client.get("/gallery/?page=2").content.decode()
    assert "/u/alice/" in second and "/u/bob/" not in second


@pytest.mark.django_db
def test_gallery_and_home_when_empty(client):
    assert "No avatars yet." in client.get("/gallery/").content.decode()
    assert "No avatars yet." in client.get("/").content.decode()


@pytest.mark.django_db
def test_profile_with_and_without_avatar(client, with_avatars):
    avatar = Avatar.objects.get(user=with_avatars["alice"])
    page = client.get("/u/alice/").content.decode()
    assert f'src="{avatar.thumbnail.url}"' in page
    assert f'href="{avatar.image.url}"' in page
    assert "64 \u00d7 48 pixels" in page  # a multiplication sign

    page = client.get("/u/carol/").content.decode()
    assert "No avatar yet." in page
    assert "/media/" not in page
    assert client.get("/u/nobody/").status_code == 404


@pytest.mark.django_db
def test_healthz_touches_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"]


def test_healthz_without_database_access_allowed(client):
    # No django_db mark: pytest-django makes any query here an error.
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_healthz_answers_any_host_header(client, settings):
    settings.ALLOWED_HOSTS = ["site.example"]
    assert client.get("/healthz", headers={"host": "localhost:8000"}).status_code == 200
    assert client.get("/", headers={"host": "localhost:8000"}).status_code == 400
    assert client.get("/", headers={"host": "site.example"}).status_code == 200


def test_static_files_are_served_without_nginx(client):
    response = client.get("/static/avatars/site.css")
    assert response.status_code == 200
    assert b".bar span" in b"".join(response.streaming_content)
    assert response["Cache-Control"] == "public, max-age=3600"
    assert client.get("/static/avatars/missing.css").status_code == 404
    assert client.get("/static/../avatar_site/settings.py").status_code in (400, 404)


def test_favicon_is_served_and_linked(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/vnd.microsoft.icon"
    assert response["Cache-Control"] == "public, max-age=3600"
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as icon:
        assert icon.format == "ICO"
        assert {(16, 16), (32, 32)} <= icon.info["sizes"]
    assert client.head("/favicon.ico").status_code == 200
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.django_db
def test_every_page_links_the_icon(client):
    page = client.get("/").content.decode()
    assert '<link rel="icon" href="/static/avatars/favicon.ico"' in page
    assert client.get("/static/avatars/favicon.ico").status_code == 200


# -- the staff status page -------------------------------------------------------------


# Local addresses where nothing listens, so the page's probes of the nodes fail at once
# (test_site_status_nodes.py has nodes that answer, refuse and hang).
REFUSED_PORT = int(closed_port().rpartition(":")[2])


class FakeClusterAdmin:
    def __init__(self) -> None:
        self.closed = False

    def get_hosts(self):
        return [
            HostInfo(
                hostid=1, name="stor1", ip="127.0.0.1", http_port=REFUSED_PORT, status="alive"
            ),
            HostInfo(hostid=2, name="stor2", ip="127.0.0.2", http_port=REFUSED_PORT, status="down"),
        ]

    def get_devices(self):
        return [
            DeviceInfo(1, 1, "alive", "writeable", 100, 1000, 250, 750),
            DeviceInfo(2, 2, "dead", "unreachable", 100, None, None, None),
        ]

    def get_domains(self):
        return {
            "avatars": {
                "avatar": ClassInfo("avatar", 3, "MultipleHosts()", "NONE"),
                "thumb": ClassInfo("thumb", 1, "", "NONE"),
            },
            "elsewhere": {"avatar": ClassInfo("avatar", 9, "", "NONE")},
        }

    def write_destinations(self, domain: str, cls: str | None = None) -> list[int]:
        return [1]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)
    return client


STAFF_NOTE = "The page you asked for is for staff: log in with a staff account."


@pytest.mark.django_db
def test_status_sends_anonymous_users_to_log_in_as_staff(client, django_user_model):
    response = client.get("/status/", follow=True)
    assert response.redirect_chain == [("/accounts/login/?next=/status/", 302)]
    page = response.content.decode()
    assert "<h1>Log in</h1>" in page and STAFF_NOTE in page
    # Still said after a wrong password, and only for staff pages.
    wrong = {"username": "ops", "password": "nope", "next": "/status/"}
    assert STAFF_NOTE in client.post("/accounts/login/", wrong).content.decode()
    for url in ("/accounts/login/", "/accounts/login/?next=/avatar/", "/accounts/login/?next=/x"):
        assert STAFF_NOTE not in client.get(url).content.decode(), url
    django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    response = client.post(
        "/accounts/login/", {"username": "ops", "password": "pw", "next": "/status/"}
    )
    assert response["Location"] == "/status/"


@pytest.mark.django_db
def test_status_tells_a_non_staff_user_who_they_are_and_how_to_switch(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("eve", password="x"))
    assert "/status/" not in client.get("/").content.decode()  # no link for non-staff
    response = client.get("/status/")
    assert response.status_code == 403
    page = response.content.decode()
    main = page[page.index("<main>") :]
    assert "<h1>Staff only</h1>" in main
    assert "You are logged in as <strong>eve</strong>, which is not a staff account." in main
    form = re.search(
        r'<form method="post" action="/accounts/logout/"[^>]*>(.*?)</form>', main, re.S
    )
    assert form, main
    assert 'name="csrfmiddlewaretoken"' in form[1]
    assert '<input type="hidden" name="next" value="/accounts/login/?next=/status/">' in form[1]
    # The login page would send a logged-in user straight back here: the way out is
    # that form, which logs out and lands on the login page, saying both.
    response = client.post(
        "/accounts/logout/", {"next": "/accounts/login/?next=/status/"}, follow=True
    )
    assert response.redirect_chain == [("/accounts/login/?next=/status/", 302)]
    page = response.content.decode()
    assert "You have been logged out." in page and STAFF_NOTE in page


@pytest.mark.django_db
def test_status_shows_hosts_devices_and_copies(
    staff_client, with_avatars, memory_storages, monkeypatch, status_cluster
):
    admin = status_cluster(FakeClusterAdmin())

    def file_info(cls, devcount):
        return lambda name: FileInfo(1, name, "avatars", cls, 10, devcount)

    monkeypatch.setattr(memory_storages.avatars, "file_info", file_info("avatar", 2), False)
    monkeypatch.setattr(memory_storages.thumbs, "file_info", file_info("thumb", 1), False)

    response = staff_client.get("/status/")
    assert response.status_code == 200
    page = response.content.decode()
    assert not admin.closed  # the configured storage's trackers and connections
    assert "stor1" in page and f"127.0.0.2:{REFUSED_PORT}" in page
    assert "unreachable" in page and "writeable" in page
    assert 'style="width: 25.0%"' in page  # 250 of 1000 MB used
    assert "750.0\xa0MB free" in page  # a no-break space, from filesizeformat
    assert "All devices</td>" in page  # one sized device: nothing shared to mention
    assert "taken as one filesystem" not in page
    assert "not reported yet" in page  # the dead device has no sizes
    assert "MultipleHosts()" in page
    # Originals have 2 copies of the class's 3 (under-replicated), thumbnails 1 of 1.
    assert page.count('<span class="state warn">2 / 3</span>') == 2
    assert page.count('<span class="state ok">1 / 1</span>') == 2
    avatar = Avatar.objects.get(user=with_avatars["bob"])
    assert avatar.image.name in page


class SharedDiskAdmin(FakeClusterAdmin):
    """make dev's layout: three devices on one 2 TB disk, plus one 500 GB disk of its own."""

    def get_devices(self):
        disk = (2_000_000, 1_000_000, 1_000_000)  # MB total, used, free
        return [
            DeviceInfo(1, 1, "alive", "writeable", 100, *disk),
            # Its usage file was written a moment later: a little more in use.
            DeviceInfo(2, 1, "alive", "writeable", 100, 2_000_000, 1_000_900, 999_100),
            DeviceInfo(3, 2, "alive", "writeable", 100, *disk),
            DeviceInfo(4, 2, "alive", "writeable", 100, 500_000, 100_000, 400_000),
        ]


def test_totals_count_each_filesystem_once():
    totals = status_module.totals(SharedDiskAdmin().get_devices())
    assert totals.filesystems == 2
    assert totals.shared == ["dev1, dev2, dev3"]
    assert totals.space == status_module.Space(2_500_000, 1_100_000, 1_400_000)
    assert totals.space.used_percent == 44.0
    assert totals.device_sum == status_module.Space(6_500_000, 3_100_900, 3_399_100)


def test_totals_of_separate_disks_are_their_sum():
    devices = [
        DeviceInfo(1, 1, "alive", "writeable", 100, 1000, 100, 900),
        DeviceInfo(2, 1, "alive", "writeable", 100, 1000, 500, 500),  # same size, other use
        DeviceInfo(3, 1, "alive", "writeable", 100, 2000, 100, 1900),
        DeviceInfo(4, 1, "dead", "unreachable", 100, None, None, None),  # not sized
    ]
    totals = status_module.totals(devices)
    assert (totals.filesystems, totals.shared, totals.device_sum) == (3, [], None)
    assert totals.space == status_module.Space(4000, 700, 3300)


@pytest.mark.django_db
def test_status_sizes_in_human_units_and_shared_filesystems_said(staff_client, status_cluster):
    status_cluster(SharedDiskAdmin())
    # filesizeformat keeps number and unit together with a no-break space.
    page = staff_client.get("/status/").content.decode().replace("\xa0", " ")
    assert "MB" not in page  # every size here is over 1 GB
    assert "976.6 GB used · 976.6 GB free · 1.9 TB" in page  # dev1
    assert "97.7 GB used · 390.6 GB free · 488.3 GB" in page  # dev4
    footer = page[page.index("<tfoot>") : page.index("</tfoot>")]
    assert "All devices, each filesystem once" in footer
    assert "1.0 TB used · 1.3 TB free · 2.4 TB" in footer  # the 2 TB disk once, plus dev4
    assert "dev1, dev2, dev3 report the same size and use" in page
    assert "Summed over every device instead: 3.0 TB used of 6.2 TB." in page


@pytest.mark.django_db
def test_status_tables_turn_into_cards_on_phones(staff_client, with_avatars, status_cluster):
    status_cluster(FakeClusterAdmin())
    page = staff_client.get("/status/").content.decode()
    # Every body cell but the colspan ones carries its column's heading for the card view.
    for table in re.findall(r'<table class="cards[^"]*">(.*?)</table>', page, re.S):
        headings = re.findall(r"<th>(.*?)</th>", table)
        body = table[table.index("<tbody>") : table.index("</tbody>")]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            labels = re.findall(r'<td data-label="([^"]*)"', row)
            assert labels == headings or "colspan" in row, (headings, row)
    assert page.count('<table class="cards') == 4


@pytest.mark.django_db
def test_status_names_the_owner_of_every_file(staff_client, with_avatars, status_cluster):
    status_cluster(FakeClusterAdmin())
    page = staff_client.get("/status/").content.decode()
    section = page[page.index("<h2>Recent files: copies</h2>") :]
    body = section[section.index("<tbody>") : section.index("</tbody>")]
    owners = [
        re.search(r'<td data-label="User"><a href="/u/(\w+)/">\1</a></td>', row).group(1)
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]
    assert owners == ["bob", "bob", "alice", "alice"]  # original and thumbnail, each


@pytest.mark.django_db
def test_status_reports_missing_files(
    staff_client, with_avatars, memory_storages, monkeypatch, status_cluster
):
    status_cluster(FakeClusterAdmin())

    def missing(name):
        raise FileNotFoundError(name)

    monkeypatch.setattr(memory_storages.avatars, "file_info", missing, False)
    page = staff_client.get("/status/").content.decode()
    assert page.count("missing from MogileFS") == 2
    # The thumbs storage (plain InMemoryStorage) has no file_info: said so, no crash.
    assert "the storage backend has no file_info" in page


@pytest.mark.django_db
def test_status_when_the_tracker_is_down(staff_client, monkeypatch):
    def unreachable():
        raise ConnectionRefusedError("tracker:7001 refused")

    mogilefs = status_module.MogileFS("avatars", "avatar", unreachable)
    monkeypatch.setattr(status_module, "mogilefs_of", lambda storage: mogilefs)
    response = staff_client.get("/status/")
    assert response.status_code == 503
    assert "The MogileFS tracker could not be reached" in response.content.decode()


# -- createstaff --------------------------------------------------------------------------


@pytest.mark.django_db
def test_createstaff_creates_then_updates(monkeypatch):
    monkeypatch.setenv("DJANGO_STAFF_PASSWORD", "a long staff password 42")
    call_command("createstaff", "ops", "--email", "ops@example.org")
    user = get_user_model().objects.get(username="ops")
    assert user.is_staff and not user.is_superuser
    assert user.check_password("a long staff password 42")
    assert user.email == "ops@example.org"

    monkeypatch.delenv("DJANGO_STAFF_PASSWORD")
    call_command("createstaff", "ops", "--superuser")  # existing user: keeps its password
    user.refresh_from_db()
    assert user.is_superuser
    assert user.check_password("a long staff password 42")


@pytest.mark.django_db
def test_createstaff_needs_a_password_for_a_new_user(monkeypatch):
    monkeypatch.delenv("DJANGO_STAFF_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="DJANGO_STAFF_PASSWORD"):
        call_command("createstaff", "ops")
    assert not get_user_model().objects.filter(username="ops").exists()


@pytest.mark.django_db
def test_createstaff_validates_the_password(monkeypatch):
    monkeypatch.setenv("DJANGO_STAFF_PASSWORD", "123")
    with pytest.raises(CommandError, match="too short"):
        call_command("createstaff", "ops")
    call_command("createstaff", "ops", "--skip-validation")
    assert get_user_model().objects.get(username="ops").is_staff
