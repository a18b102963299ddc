"""MogileFSStorage.locate and fetch: the path caches, the tracker round trips, stale paths."""

import pytest
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.test import override_settings
from django_mogilefs import storage as storage_module
from django_mogilefs.exceptions import StorageNodeError
from django_mogilefs.storage import Location, MogileFSStorage, _RecentPaths

from .storage_stubs import LOCMEM, FileCluster
from .stubs import ok

pytestmark = pytest.mark.unit
STUB_CLUSTER = FileCluster  # the ``cluster`` fixture (conftest.py)


def make_storage(cluster, **options):
    return MogileFSStorage(trackers=[cluster.tracker.address], domain="testdom", **options)


@pytest.fixture
def storage(cluster):
    with override_settings(CACHES=LOCMEM):
        caches["default"].clear()
        yield make_storage(cluster, reproxy_cache_for=120)
        caches["default"].clear()  # the other tests' stub clusters reuse these names


def stored(storage, cluster, name, body=b"abc"):
    storage.save(name, ContentFile(body))
    for dest in cluster.dests:
        cluster.node.files[dest] = body
    cluster.tracker.requests.clear()


class Clock:
    """Stands for time.monotonic in the storage module."""

    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr(storage_module.time, "monotonic", lambda: self.now)


def test_locate_answers_paths_completeness_and_the_proxy_lifetime(storage, cluster):
    cluster.paths.append(cluster.node.url("/dev3/0/000/000/0000000002.fid"))  # 3 = pathcount
    stored(storage, cluster, "a.png")
    location = storage.locate("a.png")
    assert location == Location(tuple(cluster.paths), True, 120, False)
    assert cluster.tracker.commands() == ["get_paths"]  # all paths: nothing more to ask
    assert storage.locate("a.png").cached is True


def test_the_recent_answer_spares_the_shared_cache(storage, cluster):
    stored(storage, cluster, "a.png")
    storage.locate("a.png")
    caches["default"].clear()  # as if memcached had lost it: this process still knows
    assert storage.locate("a.png").paths == tuple(cluster.paths)
    assert cluster.tracker.commands().count("get_paths") == 1


def test_without_the_recent_answers_the_shared_cache_is_asked_each_time(cluster):
    with override_settings(CACHES=LOCMEM):
        caches["default"].clear()
        storage = make_storage(cluster, local_path_cache_timeout=0)
        stored(storage, cluster, "a.png")
        storage.locate("a.png")
        caches["default"].clear()
        storage.locate("a.png")
        caches["default"].clear()
    assert cluster.tracker.commands().count("get_paths") == 2


def test_a_recent_answer_expires_after_its_timeout(storage, cluster, monkeypatch):
    clock = Clock(monkeypatch)
    stored(storage, cluster, "a.png")
    storage.locate("a.png")
    caches["default"].clear()
    clock.now += 9.9
    storage.locate("a.png")
    assert cluster.tracker.commands().count("get_paths") == 1
    clock.now += 0.2  # past the default 10 s
    storage.locate("a.png")
    assert cluster.tracker.commands().count("get_paths") == 2


def test_saving_and_deleting_forget_the_recent_answer(storage, cluster):
    stored(storage, cluster, "a.png")
    storage.locate("a.png")
    storage.delete("a.png")
    with pytest.raises(Exception, match="unknown_key"):
        storage.locate("a.png")
    stored(storage, cluster, "a.png")
    storage.locate("a.png")
    assert cluster.tracker.commands() == ["get_paths"]  # its class: known from the save


def file_info_says(cluster, cls, devcount):
    base = cluster.answer

    def answer(cmd, args):
        if cmd == "file_info":
            return ok(
                fid=7,
                key=args["key"],
                domain="testdom",
                length=3,
                devcount=devcount,
                **{"class": cls},
            )
        return base(cmd, args)

    cluster.tracker.answer = answer


def test_a_thumbnails_first_view_is_one_round_trip(cluster):
    """One copy (class thumb) of pathcount 3: complete, from get_paths alone, even when
    another storage (the serve view's, of no class) looks it up."""
    cluster.paths = cluster.paths[:1]
    with override_settings(CACHES=LOCMEM):
        caches["default"].clear()
        thumbs, serving = make_storage(cluster, mogile_class="thumb"), make_storage(cluster)
        stored(thumbs, cluster, "t.png")
        serving.client.classes()  # the class table: cached a minute, not per file
        cluster.tracker.requests.clear()
        location = serving.locate("t.png")
        caches["default"].clear()
    assert location.complete and location.cache_for == serving.config.reproxy_cache_for > 0
    assert cluster.tracker.commands() == ["get_paths"]


def test_a_file_still_replicating_is_incomplete_without_asking_file_info(storage, cluster):
    cluster.paths = cluster.paths[:1]  # class avatar wants 3 copies; 1 so far
    avatars = make_storage(cluster, mogile_class="avatar")
    stored(avatars, cluster, "new.png")
    storage.client.classes()
    cluster.tracker.requests.clear()
    location = storage.locate("new.png")
    assert (location.complete, location.cache_for) == (False, 0)
    assert cluster.tracker.commands() == ["get_paths"]


def test_a_file_not_saved_here_costs_file_info_once(storage, cluster):
    cluster.paths = cluster.paths[:1]
    cluster.existing["old.png"] = b"abc"  # stored by another program: no class known
    file_info_says(cluster, "thumb", 1)
    storage.client.classes()
    cluster.tracker.requests.clear()
    assert storage.locate("old.png").complete is True
    assert cluster.tracker.commands() == ["get_paths", "file_info"]
    storage.forget_paths("old.png")  # its paths, not its class
    cluster.tracker.requests.clear()
    assert storage.locate("old.png").complete is True
    assert cluster.tracker.commands() == ["get_paths"]


def test_recent_answers_are_bounded_and_never_outlive_the_shared_cache(monkeypatch):
    clock = Clock(monkeypatch)
    recent = _RecentPaths(timeout=10, size=2)
    where = Location(("http://n/1.fid",), False, 0, True)
    recent.put("a", where, 300)
    recent.put("b", where, 300)
    recent.put("c", where, 5)  # an incomplete answer: 5 s in the shared cache
    assert recent.get("a") is None  # the oldest made room
    assert recent.get("b") == recent.get("c") == where
    clock.now += 5
    assert recent.get("c") is None and recent.get("b") == where
    clock.now += 5
    assert recent.get("b") is None
    recent.put("d", where, 300)
    recent.forget("d")
    assert recent.get("d") is None


def test_a_missing_copy_needs_no_class_table(storage, cluster, monkeypatch):
    def no_class_table(**kwargs):
        raise AssertionError("the class table was asked for")

    cluster.existing["a.png"] = b"abc"  # not saved here: its class is not known yet
    file_info_says(cluster, "x", 3)  # 3 copies, the tracker listed 2: one on a down device
    monkeypatch.setattr(storage.client, "classes", no_class_table)
    location = storage.locate("a.png")
    assert (location.complete, location.cache_for) == (False, 0)
    assert cluster.tracker.commands() == ["get_paths", "file_info"]


def test_paths_just_given_by_the_tracker_are_not_asked_for_again(storage, cluster):
    stored(storage, cluster, "a.png")
    cluster.node.files.clear()
    with pytest.raises(StorageNodeError):
        storage.fetch("a.png", storage.locate("a.png"))
    assert cluster.tracker.commands().count("get_paths") == 1


def test_cached_paths_that_fail_are_forgotten_and_asked_for_once_more(storage, cluster):
    stored(storage, cluster, "a.png")
    location = storage.locate("a.png")
    cluster.node.files.clear()
    cluster.dests = ["/dev3/0/000/000/0000000009.fid"]
    cluster.paths = [cluster.node.url(cluster.dests[0])]
    cluster.node.files[cluster.dests[0]] = b"moved"
    with storage.fetch("a.png", storage.locate("a.png")) as response:
        assert response.content == b"moved"
    assert storage.locate("a.png").paths == tuple(cluster.paths) != location.paths
    assert cluster.tracker.commands().count("get_paths") == 2


def test_open_follows_the_same_rule_for_stale_paths(storage, cluster):
    stored(storage, cluster, "a.png")
    storage.locate("a.png")
    cluster.node.files.clear()
    cluster.dests = ["/dev3/0/000/000/0000000009.fid"]
    cluster.paths = [cluster.node.url(cluster.dests[0])]
    cluster.node.files[cluster.dests[0]] = b"moved"
    with storage.open("a.png") as f:
        assert f.read() == b"moved"


def test_fetch_with_head_asks_the_node_with_head(storage, cluster):
    stored(storage, cluster, "a.png")
    storage.fetch("a.png", storage.locate("a.png"), head=True).close()
    assert cluster.node.log[-1][0] == "HEAD"
