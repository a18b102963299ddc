"""What a render of /status/ asks the tracker, through the storage the site is configured with.

A stub tracker behind ``MogileFSStorage``s configured through ``OPTIONS`` only, while the
``MOGILEFS_*`` settings name another cluster: the page must read the storage, ask three
things per render, write (``create_open``) at most once per ``STATUS_CACHE_SECONDS`` for
every worker together, and ask each recent file's copies in parallel, then from the cache.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from avatars.models import Avatar
from django.core.cache import caches
from django_mogilefs.storage import MogileFSStorage
from unit.stubs import StubTracker, closed_port, ok

pytestmark = pytest.mark.unit

DOMAIN = "optsdom"
REFUSED = closed_port()
FILE_INFO_DELAY = 0.05
HOST, PORT = REFUSED.split(":")
LISTINGS = {  # the three answers a render asks for, as a 2.73 tracker words them
    "get_hosts": {
        "hosts": 1,
        "host1_hostid": 1,
        "host1_hostname": "stor1",
        "host1_hostip": HOST,
        "host1_http_port": PORT,
        "host1_status": "alive",
    },
    "get_devices": {
        "devices": 1,
        "dev1_devid": 1,
        "dev1_hostid": 1,
        "dev1_status": "alive",
        "dev1_observed_state": "writeable",
        "dev1_weight": 100,
        "dev1_mb_total": 1000,
        "dev1_mb_used": 10,
        "dev1_mb_free": 990,
    },
    "get_domains": {
        "domains": 1,
        "domain1": DOMAIN,
        "domain1classes": 2,
        "domain1class1name": "orig",
        "domain1class1mindevcount": 2,
        "domain1class2name": "small",
        "domain1class2mindevcount": 1,
    },
}


class Tracker:
    """Answers what the page asks: one host (nothing listens on its port), one device, the
    domain's classes ``orig`` (2 copies) and ``small`` (1), create_open, file_info."""

    def __init__(self) -> None:
        self.short = set()  # keys whose file_info says 0 copies
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self.stub = StubTracker(self.answer)

    def answer(self, command: str, args: dict[str, str]) -> bytes:
        if command in LISTINGS:
            return ok(**LISTINGS[command])
        if command == "create_open":
            return ok(fid=9, dev_count=1, devid_1=1, path_1=f"http://{REFUSED}/dev1/9.fid")
        if command == "file_info":
            return self.file_info(args["key"])
        return ok()

    def file_info(self, key: str) -> bytes:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(FILE_INFO_DELAY)
        with self._lock:
            self.in_flight -= 1
        cls, copies = ("orig", 2) if key.startswith("avatars/") else ("small", 1)
        copies = 0 if key in self.short else copies
        return ok(fid=1, key=key, domain=DOMAIN, length=10, devcount=copies, **{"class": cls})

    def asked(self) -> Counter:
        """The commands asked since the last call, counted."""
        counts = Counter(self.stub.commands())
        self.stub.requests.clear()
        return counts


class SubclassedStorage(MogileFSStorage):
    """A project's own subclass of the backend."""


PACKAGE_BACKEND = "django_mogilefs.storage.MogileFSStorage"


@pytest.fixture
def backend() -> str:
    """The configured backend's dotted path (a test may name a subclass instead)."""
    return PACKAGE_BACKEND


@pytest.fixture
def tracker(settings, backend):
    """The stub, as the tracker of the configured storages (settings point elsewhere)."""
    t = Tracker()

    def storage(cls: str) -> dict:
        options = {"trackers": [t.stub.address], "domain": DOMAIN, "mogile_class": cls}
        return {"BACKEND": backend, "OPTIONS": options}

    settings.STORAGES = {
        **settings.STORAGES,
        "avatars": storage("orig"),
        "thumbs": storage("small"),
    }
    settings.MOGILEFS_TRACKERS = [closed_port()]
    settings.MOGILEFS_DOMAIN = "elsewhere"
    settings.MOGILEFS_AVATAR_CLASS = "not-this-one"
    settings.STATUS_ASK_CREATE_OPEN = True
    settings.STATUS_PROBE_TIMEOUT_MS = 500
    caches["default"].clear()
    yield t
    t.stub.close()
    caches["default"].clear()


def avatars(django_user_model, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        user = django_user_model.objects.create_user(f"user{n}", password="x")
        Avatar.objects.create(
            user=user,
            image=f"avatars/{user.pk}/{n}.png",
            thumbnail=f"thumbs/{user.pk}/{n}.png",
            content_type="image/png",
            width=64,
            height=64,
            size=10,
            thumb_width=64,
            thumb_height=64,
        )


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="x", is_staff=True))
    return client


READS = {"get_hosts": 1, "get_devices": 1, "get_domains": 1}
PROBE = {"create_open": 1, "create_close": 1}


@pytest.mark.django_db
def test_a_render_asks_three_things_once_the_files_are_known(
    staff_client, tracker, django_user_model, settings
):
    avatars(django_user_model, 25)  # the page shows the 20 most recent: 40 files

    started = time.monotonic()
    page = staff_client.get("/status/").content.decode()
    first = time.monotonic() - started
    assert tracker.asked() == {**READS, **PROBE, "file_info": 40}
    assert f"Domain <code>{DOMAIN}</code>" in page
    assert "class <code>orig</code>), the tracker would offer\n        dev1." in page
    assert page.count('<span class="state ok">2 / 2</span>') == 20
    assert page.count('<span class="state ok">1 / 1</span>') == 20
    # In parallel: one after another, 40 file_info would take 40 x 50 ms.
    assert tracker.most_in_flight > 1
    assert first < 40 * FILE_INFO_DELAY

    for _ in range(3):
        assert staff_client.get("/status/").status_code == 200
        assert tracker.asked() == READS  # no write, no file_info

    # Another worker: storages of its own, the same shared cache.
    settings.STORAGES = {**settings.STORAGES}
    staff_client.get("/status/")
    assert tracker.asked() == READS

    avatars(django_user_model, 1, start=100)  # a new upload: its two files, once
    staff_client.get("/status/")
    assert tracker.asked() == {**READS, "file_info": 2}
    staff_client.get("/status/")
    assert tracker.asked() == READS


@pytest.mark.django_db
def test_the_probe_and_the_files_short_of_copies_are_asked_again_after_the_period(
    staff_client, tracker, django_user_model, settings
):
    settings.STATUS_CACHE_SECONDS = 1
    avatars(django_user_model, 3)
    short = Avatar.objects.order_by("-updated")[0].thumbnail.name
    tracker.short.add(short)
    page = staff_client.get("/status/").content.decode()
    assert '<span class="state warn">0 / 1</span>' in page
    assert tracker.asked() == {**READS, **PROBE, "file_info": 6}
    staff_client.get("/status/")
    assert tracker.asked() == READS
    time.sleep(1.1)
    staff_client.get("/status/")
    assert tracker.asked() == {**READS, **PROBE, "file_info": 1}  # the complete ones are kept


@pytest.mark.django_db
@pytest.mark.parametrize("backend", [PACKAGE_BACKEND, f"{__name__}.SubclassedStorage"])
def test_the_write_probe_asks_the_storages_domain_and_class(staff_client, tracker, backend):
    staff_client.get("/status/")
    (opened,) = [args for command, args in tracker.stub.requests if command == "create_open"]
    assert (opened["domain"], opened["class"]) == (DOMAIN, "orig")
    (closed,) = [args for command, args in tracker.stub.requests if command == "create_close"]
    assert closed["domain"] == DOMAIN and "key" not in closed
