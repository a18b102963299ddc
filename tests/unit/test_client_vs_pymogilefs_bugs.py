"""One test for each pymogilefs 0.1.2 bug, against our client.

Each test drives our client through the situation that breaks pymogilefs and
checks the behaviour a caller needs instead.
"""

import io

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.cluster import ClassInfo, ClusterAdmin
from django_mogilefs.exceptions import StorageNodeError, TrackerUnavailableError

from .stubs import StubTracker, closed_port

pytestmark = pytest.mark.unit


def test_bug1_get_domains_parses_the_real_servers_answer(cluster):
    domains = ClusterAdmin([cluster.tracker.address]).get_domains()
    assert domains["testdom"]["md5class"] == ClassInfo("md5class", 2, "MultipleHosts(2)", "MD5")
    assert domains["testdom"]["avatar"].mindevcount == 3
    assert domains["testdom"]["default"].mindevcount == 2
    assert set(domains["testdom"]) == {"default", "thumb", "md5class", "avatar"}


def test_bug2_a_put_answered_500_is_not_success(cluster):
    cluster.node.status[cluster.dests[0]] = 500
    cluster.node.status[cluster.dests[1]] = 500
    with pytest.raises(StorageNodeError):
        cluster.client.store("k", b"data", cls="thumb")
    assert "create_close" not in cluster.tracker.commands()


def test_bug3_a_404_body_is_never_returned_as_the_file(cluster):
    cluster.node.files[cluster.dests[1]] = b"real bytes"
    # dests[0] is missing -> 404; the client must move on to the next path.
    f = cluster.client.open("k")
    assert f.read() == b"real bytes"


def test_bug4_list_keys_decodes_keys(cluster):
    assert list(cluster.client.list_keys("avatars/")) == ["avatars/café b.jpg"]


def test_bug5_every_path_failing_is_a_typed_error_not_runtime_error(cluster):
    with pytest.raises(StorageNodeError) as info:
        cluster.client.open("k")
    assert "404" in str(info.value)


def test_bug6_retry_rewinds_so_the_next_node_gets_the_whole_file(cluster):
    cluster.node.status[cluster.dests[0]] = 500
    payload = b"0123456789" * 10000
    source = io.BytesIO(payload)
    assert cluster.client.store("k", source, cls="thumb") == len(payload)
    assert cluster.node.files[cluster.dests[1]] == payload
    close = [a for c, a in cluster.tracker.requests if c == "create_close"]
    assert close[0]["size"] == str(len(payload))
    assert close[0]["path"] == cluster.node.url(cluster.dests[1])
    assert close[0]["devid"] == "2"


def test_bug7_list_keys_with_the_tracker_down_is_a_typed_error():
    client = MogileFSClient([closed_port()], "testdom")
    with pytest.raises(TrackerUnavailableError):
        list(client.list_keys("x"))


def test_bug8_tracker_closing_without_reply_is_a_typed_error():
    silent = StubTracker(lambda cmd, args: None)
    try:
        client = MogileFSClient([silent.address], "testdom")
        with pytest.raises(TrackerUnavailableError):
            client.get_paths("k")
    finally:
        silent.close()


def test_bug9_delete_prints_nothing(cluster, capsys):
    cluster.client.delete("k")
    assert capsys.readouterr() == ("", "")
    assert ("delete", {"domain": "testdom", "key": "k"}) in cluster.tracker.requests


def test_bug10_create_class_passes_replpolicy_and_hashtype(cluster):
    ClusterAdmin([cluster.tracker.address]).create_class(
        "testdom", "md5class", 2, replpolicy="MultipleHosts(2)", hashtype="MD5"
    )
    assert (
        "create_class",
        {
            "domain": "testdom",
            "class": "md5class",
            "mindevcount": "2",
            "replpolicy": "MultipleHosts(2)",
            "hashtype": "MD5",
        },
    ) in cluster.tracker.requests


def test_only_first_tracker_bug_requests_reach_a_second_tracker(cluster):
    client = MogileFSClient([closed_port(), cluster.tracker.address], "testdom")
    assert client.get_paths("k") == cluster.paths


def test_http_calls_have_timeouts(cluster):
    assert cluster.client.http.timeout == (3.0, 30.0)
    seen = []
    real = cluster.client.http.session.request

    def spy(method, url, **kwargs):
        seen.append(kwargs.get("timeout"))
        return real(method, url, **kwargs)

    cluster.client.http.session.request = spy
    cluster.node.files[cluster.dests[0]] = b"x"
    cluster.client.open("k").read()
    cluster.client.store("k", b"y", cls="thumb")
    assert seen and all(t == (3.0, 30.0) for t in seen)
