"""A tracker that stops between doing a command and answering it, one case per command.

Two fake trackers share one state (as two mogilefsd share one database) in front of real
Perlbal storage nodes. The first tracker is asked first; ``stop_after`` makes it run the
command, then stop without answering, so the client resends the command to the second.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.exceptions import UnknownKeyError
from django_mogilefs.testing.cluster import MogileCluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair(make_fake_cluster: Callable[..., MogileCluster]) -> MogileCluster:
    """Two fake trackers of the module's own: its tests stop them."""
    return make_fake_cluster(trackers=2)


@pytest.fixture
def cluster(pair: MogileCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[MogileCluster]:
    """The pair, with the first tracker asked first; a stopped tracker is replaced after."""
    monkeypatch.setattr("random.randrange", lambda n: 0)
    yield pair
    for index, tracker in enumerate(pair.fakes):
        if tracker.stopping:
            pair.replace_tracker(index)


@pytest.fixture
def client(cluster: MogileCluster) -> Iterator[MogileFSClient]:
    client = MogileFSClient(cluster.trackers, cluster.domain, dead_timeout=60)
    yield client
    client.close()


def failovers(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "django_mogilefs.tracker" and r.levelno == logging.WARNING
    ]


def new_key() -> str:
    return f"tracker-loss/{uuid.uuid4().hex}"


def test_store_whose_create_close_answer_is_lost(
    cluster: MogileCluster, client: MogileFSClient, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    cluster.fakes[0].stop_after("create_close")
    with caplog.at_level(logging.INFO):
        assert client.store(key, b"stored once", cls="thumb") == 11
    assert cluster.fakes[0].stopping
    assert client.open(key).read() == b"stored once"
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "starting over" in m], "the lost close was confirmed"
    assert [m for m in messages if "answered no_temp_file to 'create_close'" in m]
    (warning,) = failovers(caplog)
    assert cluster.trackers[0] in warning


def test_store_whose_create_open_answer_is_lost(
    cluster: MogileCluster, client: MogileFSClient
) -> None:
    key = new_key()
    cluster.fakes[0].stop_after("create_open")
    client.store(key, b"opened twice", cls="thumb")
    assert client.open(key).read() == b"opened twice"


def test_delete_whose_answer_is_lost(cluster: MogileCluster, client: MogileFSClient) -> None:
    key = new_key()
    client.store(key, b"to delete", cls="thumb")
    cluster.fakes[0].stop_after("delete")
    client.delete(key)
    assert not client.exists(key)


def test_rename_whose_answer_is_lost(cluster: MogileCluster, client: MogileFSClient) -> None:
    old, new = new_key(), new_key()
    client.store(old, b"moving", cls="thumb")
    cluster.fakes[0].stop_after("rename")
    client.rename(old, new)
    assert not client.exists(old)
    assert client.open(new).read() == b"moving"


def test_updateclass_whose_answer_is_lost(cluster: MogileCluster, client: MogileFSClient) -> None:
    key = new_key()
    client.store(key, b"reclassed", cls="thumb")
    cluster.fakes[0].stop_after("updateclass")
    client.update_class(key, "avatar")
    assert client.file_info(key).cls == "avatar"


def test_a_first_attempt_error_is_still_raised(
    cluster: MogileCluster, client: MogileFSClient
) -> None:
    with pytest.raises(UnknownKeyError):
        client.delete(new_key())
    assert not cluster.fakes[0].stopping


@pytest.mark.parametrize(
    ("command", "call"),
    [
        ("create_domain", lambda admin, name: admin.create_domain(name)),
        ("create_class", lambda admin, name: admin.create_class("testdom", name, 1)),
        (
            "delete_domain",
            lambda admin, name: admin.pool.request("delete_domain", {"domain": name}),
        ),
    ],
)
def test_admin_commands_whose_answer_is_lost(cluster: MogileCluster, command: str, call) -> None:  # type: ignore[no-untyped-def]
    name = f"lost{uuid.uuid4().hex[:8]}"
    admin = ClusterAdmin(cluster.trackers, timeout=30)
    try:
        if command == "delete_domain":
            admin.create_domain(name)
        cluster.fakes[0].stop_after(command)
        call(admin, name)
        domains = admin.get_domains()
    finally:
        admin.close()
    if command == "create_domain":
        assert name in domains
    elif command == "create_class":
        assert name in domains["testdom"]
    else:
        assert name not in domains


def test_create_host_whose_answer_is_lost(cluster: MogileCluster) -> None:
    admin = ClusterAdmin(cluster.trackers, timeout=30)
    name = f"lost{uuid.uuid4().hex[:8]}"
    try:
        cluster.fakes[0].stop_after("create_host")
        hostid = admin.create_host(name, "127.0.0.99", 7500, status="down")
        hosts = {h.name: h for h in admin.get_hosts()}
        assert hosts[name].hostid == hostid
        admin.pool.request("delete_host", {"host": name})
    finally:
        admin.close()
