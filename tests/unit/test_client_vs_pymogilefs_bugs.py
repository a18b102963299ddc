"""One test for each pymogilefs 0.1.2 bug (research anchors §1.1), against our client.

Each test drives our client through the situation that breaks pymogilefs and
checks the behaviour a caller needs instead.
"""

import io

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.cluster import ClassInfo, ClusterAdmin
from django_mogilefs.exceptions import StorageNodeError, TrackerUnavailableError

from .stubs import StubNode, StubTracker, closed_port, ok

pytestmark = pytest.mark.unit

# get_domains as the real 2.73 tracker answered it (transcript, "classes" section).
REAL_GET_DOMAINS = (
    b"OK domain1class2hashtype=NONE&domain1class1name=default&domain1class2mindevcount=1"
    b"&domain1class2name=thumb&domain1class1hashtype=NONE&domain1class1mindevcount=2"
    b"&domain1=testdom&domains=1&domain1class1replpolicy=MultipleHosts%28%29"
    b"&domain1class2replpolicy=MultipleHosts%28%29&domain1class3name=md5class&domain1classes=4"
    b"&domain1class3hashtype=MD5&domain1class4replpolicy=MultipleHosts%28%29"
    b"&domain1class3mindevcount=2&domain1class3replpolicy=MultipleHosts%282%29"
    b"&domain1class4mindevcount=3&domain1class4hashtype=NONE&domain1class4name=avatar\r\n"
)


class Cluster:
    """A stub tracker in front of one stub node, answering the file commands."""

    def __init__(self, dests=("/dev1/0/000/000/0000000002.fid", "/dev2/0/000/000/0000000002.fid")):
        self.node = StubNode()
        self.dests = list(dests)
        self.paths = [self.node.url(p) for p in self.dests]
        self.keys = ["avatars/café b.jpg"]
        self.tracker = StubTracker(self.answer)
        self.client = MogileFSClient([self.tracker.address], "testdom")

    def answer(self, cmd, args):
        if cmd == "get_domains":
            return REAL_GET_DOMAINS
        if cmd == "create_open":
            reply = {"fid": 2, "dev_count": len(self.dests)}
            for i, path in enumerate(self.dests, 1):
                reply[f"devid_{i}"] = i
                reply[f"path_{i}"] = self.node.url(path)
            return ok(**reply)
        if cmd == "get_paths":
            return ok(paths=len(self.paths), **{f"path{i}": p for i, p in enumerate(self.paths, 1)})
        if cmd == "list_keys":
            if args.get("after"):
                return b"ERR none_match No+keys+match\r\n"
            keys = {f"key_{i}": k for i, k in enumerate(self.keys, 1)}
            return ok(key_count=len(self.keys), next_after=self.keys[-1], **keys)
        return b"OK \r\n"

    def close(self):
        self.tracker.close()
        self.node.close()


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


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
