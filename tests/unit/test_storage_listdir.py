"""``MogileFSStorage.listdir`` against the fake tracker: a folder costs one ``list_keys``
whatever its size, and the listing is the same as reading every key would give."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import override_settings
from django_mogilefs.storage import MogileFSStorage
from django_mogilefs.testing.faketracker import FakeTracker

from .storage_stubs import LOCMEM

pytestmark = pytest.mark.unit

BIG = 2500  # keys in each big folder: three pages each
KEYS = [
    "a",  # a file and a folder of the same name
    *(f"a/{n:04d}" for n in range(BIG)),
    "a-b/x",  # folders and files that share the folder's first letters
    "a.txt",
    "ab/1",
    "ab/2/3",
    "b/c/d/e",
    "top",
    *(f"z/{n:04d}" for n in range(BIG)),
    "z/\U0010ffff\U0010ffff",  # sorts after every other key of z/
    "é/1",  # after z in UTF-8's order
]


@pytest.fixture(scope="module")
def tracker() -> Iterator[FakeTracker]:
    fake = FakeTracker().start(workers=False)
    fake.execute("create_domain domain=d")
    db = fake.store.db
    dmid = fake.store.domain_by_name("d").dmid
    with db.transaction():
        for fid, key in enumerate(KEYS, 10):
            db.execute(
                "INSERT INTO file (fid, dmid, dkey, length, classid, devcount) "
                "VALUES (?, ?, ?, 1, 0, 1)",
                (fid, dmid, db.key_param(key)),
            )
    yield fake
    fake.shutdown()


@pytest.fixture
def storage(tracker: FakeTracker) -> Iterator[MogileFSStorage]:
    with override_settings(CACHES=LOCMEM):
        yield MogileFSStorage(trackers=[tracker.hostport], domain="d")


def requests_for(tracker: FakeTracker, call) -> tuple[object, int]:
    before = tracker.stats["queries"]
    result = call()
    return result, tracker.stats["queries"] - before


def every_key_listing(path: str) -> tuple[list[str], list[str]]:
    """What listdir must answer: from every key, as reading them all would."""
    prefix = f"{path}/" if path else ""
    dirs, files = set(), []
    for key in sorted(KEYS, key=lambda k: k.encode()):
        if key.startswith(prefix):
            head, sep, _ = key[len(prefix) :].partition("/")
            dirs.add(head) if sep else files.append(head)
    return sorted(dirs), files


def test_the_top_costs_a_request_per_folder_not_per_page(storage, tracker) -> None:
    listing, requests = requests_for(tracker, lambda: storage.listdir(""))
    assert listing == (["a", "a-b", "ab", "b", "z", "é"], ["a", "a.txt", "top"])
    assert listing == every_key_listing("")
    # a's first page, z's first page, é's page, and the tracker's "no more keys";
    # reading every key would take at least len(KEYS) / 1000 + 1 = 6.
    assert requests == 4


@pytest.mark.parametrize("path", ["a", "ab", "ab/2", "b/c", "z", "é", "nothing"])
def test_folders_list_what_every_key_shows(storage, path) -> None:
    assert storage.listdir(path) == every_key_listing(path)


def test_a_folder_of_files_is_read_page_by_page(storage, tracker) -> None:
    (dirs, files), requests = requests_for(tracker, lambda: storage.listdir("z"))
    assert dirs == [] and len(files) == BIG + 1 and files[-1] == "\U0010ffff\U0010ffff"
    assert requests == 4  # three pages and "no more keys": nothing skipped, nothing read twice


class CollatingClient:
    """A tracker whose order ignores U+10FFFF (as a collation may): a listing that asks to
    start past a folder starts at the folder's first key. Pages of two keys."""

    def __init__(self, keys: list[str]) -> None:
        self.keys, self.requests = sorted(keys), 0

    def list_key_pages(self, prefix: str = "", *, after: str | None = None):
        after = (after or "").replace("\U0010ffff", "")
        keys = [k for k in self.keys if k.startswith(prefix) and k > after]
        for n in range(0, len(keys) + 1, 2):
            self.requests += 1
            if self.requests > 50:
                raise AssertionError("the listing goes round in circles")
            yield keys[n : n + 2]


def test_a_tracker_that_does_not_skip_is_paged_through(storage) -> None:
    keys = ["a/1", "a/2", "a/3", "a/4", "b", "c/1", "c/2", "c/3"]
    storage.__dict__["client"] = client = CollatingClient(keys)
    assert storage.listdir("") == (["a", "c"], ["b"])
    assert client.requests < 20
