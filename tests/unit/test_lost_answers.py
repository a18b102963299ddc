"""A write resent after a lost answer: resolved against the trackers' state, not failed.

Two stub trackers share one dict of keys (one database, as two mogilefsd on one MySQL).
The first one runs the request and closes the connection without answering; the pool
resends it to the second, whose refusal must be recognised as the first one's success.
"""

import logging
import threading

import pytest
from django_mogilefs.client import MogileFSClient
from django_mogilefs.exceptions import (
    CloseFailedError,
    HostExistsError,
    KeyExistsError,
    UnknownKeyError,
)
from django_mogilefs.tracker import TrackerPool

from .stubs import StubNode, StubTracker, closed_port, ok

pytestmark = pytest.mark.unit

ERR = {
    "unknown_key": b"ERR unknown_key unknown_key\r\n",
    "no_temp_file": b"ERR no_temp_file No+tempfile+or+file+already+closed\r\n",
    "key_exists": b"ERR key_exists Target+key+name+already+exists\r\n",
    "domain_exists": b"ERR domain_exists That+domain+already+exists\r\n",
    "host_exists": b"ERR host_exists That+host+already+exists\r\n",
}


class SharedDB:
    """The two stubs' one database: keys -> (fid, length), temp files, hosts, domains."""

    def __init__(self, node: StubNode | None = None) -> None:
        self.keys: dict[str, tuple[int, int]] = {}
        self.temp: set[int] = set()
        self.next_fid = 10
        self.domains: set[str] = set()
        self.hosts: dict[str, str] = {}
        self.node = node
        self.lock = threading.Lock()

    def run(self, cmd: str, args: dict[str, str]) -> bytes:
        with self.lock:
            return getattr(self, f"cmd_{cmd}", lambda args: b"OK \r\n")(args)

    def cmd_delete(self, args):
        return b"OK \r\n" if self.keys.pop(args["key"], None) else ERR["unknown_key"]

    def cmd_file_info(self, args):
        if args["key"] not in self.keys:
            return ERR["unknown_key"]
        fid, length = self.keys[args["key"]]
        return ok(fid=fid, key=args["key"], length=length, devcount=1)

    def cmd_rename(self, args):
        if args["from_key"] not in self.keys:
            return ERR["unknown_key"]
        if args["to_key"] in self.keys:
            return ERR["key_exists"]
        self.keys[args["to_key"]] = self.keys.pop(args["from_key"])
        return b"OK \r\n"

    def cmd_create_open(self, args):
        fid, self.next_fid = self.next_fid, self.next_fid + 1
        self.temp.add(fid)
        path = self.node.url(f"/dev1/0/000/000/{fid:010d}.fid") if self.node else "x"
        return ok(fid=fid, dev_count=1, devid_1=1, path_1=path)

    def cmd_create_close(self, args):
        fid = int(args["fid"])
        if fid not in self.temp:
            return ERR["no_temp_file"]
        self.temp.discard(fid)
        self.keys[args["key"]] = (fid, int(args["size"]))
        return b"OK \r\n"

    def cmd_create_domain(self, args):
        if args["domain"] in self.domains:
            return ERR["domain_exists"]
        self.domains.add(args["domain"])
        return ok(domain=args["domain"])

    def cmd_create_host(self, args):
        if args["host"] in self.hosts:
            return ERR["host_exists"]
        self.hosts[args["host"]] = args["ip"]
        return ok(hostid=len(self.hosts), hostname=args["host"])

    def cmd_get_hosts(self, args):
        fields = {}
        for n, (name, ip) in enumerate(self.hosts.items(), 1):
            fields.update({f"host{n}_hostid": n, f"host{n}_hostname": name, f"host{n}_hostip": ip})
        return ok(hosts=len(self.hosts), **fields)

    def cmd_get_domains(self, args):
        return ok(domains=0)


class Pair:
    """Tracker 1 runs ``lose`` commands and hangs up; tracker 2 answers everything."""

    def __init__(self, db: SharedDB, lose: set[str], *, drop_first: bool = False) -> None:
        self.db = db
        self.lose = set(lose)
        self.drop_first = drop_first  # hang up *before* running (the request never ran)
        self.first = StubTracker(self.answer_first)
        self.second = StubTracker(db.run)

    def answer_first(self, cmd, args):
        if cmd in self.lose:
            self.lose.discard(cmd)  # only the first time
            if not self.drop_first:
                self.db.run(cmd, args)
            return None
        return self.db.run(cmd, args)

    def pool(self) -> TrackerPool:
        return TrackerPool([self.first.address, self.second.address], dead_timeout=60)

    def close(self):
        self.first.close()
        self.second.close()


@pytest.fixture(autouse=True)
def first_tracker_first(monkeypatch):
    monkeypatch.setattr("random.randrange", lambda n: 0)


@pytest.fixture
def db():
    return SharedDB()


@pytest.fixture
def pair(db, request):
    p = Pair(db, set(request.param))
    yield p
    p.close()


@pytest.mark.parametrize("pair", [["delete"]], indirect=True)
def test_a_lost_delete_that_ran_is_a_success(pair, db, caplog):
    db.keys["k"] = (2, 5)
    with caplog.at_level(logging.INFO, logger="django_mogilefs.tracker"):
        assert pair.pool().request("delete", {"domain": "d", "key": "k"}) == {}
    assert "k" not in db.keys
    assert [c for c, _ in pair.second.requests] == ["delete"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one WARNING per failover event"
    assert pair.first.address in warnings[0].getMessage()
    assert "without answering" in warnings[0].getMessage()


@pytest.mark.parametrize("pair", [[]], indirect=True)
def test_a_first_attempt_unknown_key_is_still_the_trackers_verdict(pair):
    with pytest.raises(UnknownKeyError) as info:
        pair.pool().request("delete", {"domain": "d", "key": "missing"})
    assert not info.value.after_lost_answer


def test_a_refused_tracker_did_not_run_it_so_the_error_stands(db):
    second = StubTracker(db.run)
    try:
        pool = TrackerPool([closed_port(), second.address])
        with pytest.raises(UnknownKeyError) as info:
            pool.request("delete", {"domain": "d", "key": "missing"})
        assert not info.value.after_lost_answer
    finally:
        second.close()


def test_a_timed_out_delete_that_ran_is_a_success(db):
    release = threading.Event()

    def slow(cmd, args):
        reply = db.run(cmd, args)
        release.wait(5)
        return reply

    first, second = StubTracker(slow), StubTracker(db.run)
    db.keys["k"] = (2, 5)
    try:
        pool = TrackerPool([first.address, second.address], timeout=0.3)
        assert pool.request("delete", {"domain": "d", "key": "k"}) == {}
    finally:
        release.set()
        first.close()
        second.close()


@pytest.mark.parametrize("pair", [["delete"]], indirect=True)
def test_a_lost_delete_on_an_idle_connection_is_a_success(pair, db):
    db.keys["k"] = (2, 5)
    pool = pair.pool()
    pool.request("noop")  # leaves an idle connection to the first tracker
    assert pool.request("delete", {"domain": "d", "key": "k"}) == {}
    assert "k" not in db.keys


@pytest.mark.parametrize("pair", [["create_close"]], indirect=True)
def test_a_lost_create_close_confirmed_by_file_info(pair, db):
    pool = pair.pool()
    fid = pool.request("create_open", {"domain": "d", "key": "k"})["fid"]
    close = {"domain": "d", "key": "k", "fid": fid, "devid": 1, "path": "x", "size": 5}
    assert pool.request("create_close", close) == {}
    assert db.keys["k"] == (int(fid), 5)
    # The idle connection's end of file looks stale, so the resend goes to tracker 1 anew.
    sent = [c for c, _ in pair.first.requests + pair.second.requests]
    assert sent == ["create_open", "create_close", "create_close", "file_info"]


@pytest.mark.parametrize("pair", [["create_close"]], indirect=True)
def test_a_lost_create_close_that_did_not_take_effect_is_raised(pair, db):
    pool = pair.pool()
    fid = pool.request("create_open", {"domain": "d", "key": "k"})["fid"]
    db.temp.discard(int(fid))  # e.g. the tracker refused the upload and dropped the fid
    db.keys["k"] = (999, 5)  # the key holds another file
    close = {"domain": "d", "key": "k", "fid": fid, "devid": 1, "path": "x", "size": 5}
    with pytest.raises(CloseFailedError) as info:
        pool.request("create_close", close)
    assert info.value.after_lost_answer


@pytest.mark.parametrize("pair", [["create_close"]], indirect=True)
def test_a_lost_create_close_with_another_size_is_raised(pair, db):
    pool = pair.pool()
    fid = pool.request("create_open", {"domain": "d", "key": "k"})["fid"]
    close = {"domain": "d", "key": "k", "fid": fid, "devid": 1, "path": "x", "size": 5}
    db.temp.discard(int(fid))
    db.keys["k"] = (int(fid), 4)
    with pytest.raises(CloseFailedError):
        pool.request("create_close", close)


@pytest.mark.parametrize("pair", [["rename"]], indirect=True)
def test_a_lost_rename_is_checked_against_where_the_keys_are(pair, db):
    db.keys["a"] = (2, 5)
    assert pair.pool().request("rename", {"domain": "d", "from_key": "a", "to_key": "b"}) == {}
    assert db.keys == {"b": (2, 5)}


@pytest.mark.parametrize("pair", [["rename"]], indirect=True)
def test_a_lost_rename_that_did_not_run_keeps_its_error(pair, db):
    pair.drop_first = True
    db.keys.update({"a": (2, 5), "b": (3, 5)})
    with pytest.raises(KeyExistsError) as info:
        pair.pool().request("rename", {"domain": "d", "from_key": "a", "to_key": "b"})
    assert info.value.after_lost_answer
    assert db.keys == {"a": (2, 5), "b": (3, 5)}


@pytest.mark.parametrize("pair", [["create_domain"]], indirect=True)
def test_a_lost_create_domain_is_a_success(pair, db):
    assert pair.pool().request("create_domain", {"domain": "new"}) == {}
    assert db.domains == {"new"}


@pytest.mark.parametrize("pair", [["create_host"]], indirect=True)
def test_a_lost_create_host_returns_the_hostid(pair, db):
    args = {"host": "mog1", "ip": "10.0.0.1", "port": 7500}
    db.hosts["mog0"] = "10.0.0.9"
    assert pair.pool().request("create_host", args) == {"hostid": "2", "hostname": "mog1"}


@pytest.mark.parametrize("pair", [["create_host"]], indirect=True)
def test_a_host_created_by_someone_else_is_not_ours(pair, db):
    pair.drop_first = True
    db.hosts["mog1"] = "10.0.0.7"
    with pytest.raises(HostExistsError):
        pair.pool().request("create_host", {"host": "mog1", "ip": "10.0.0.1", "port": 7500})


def test_store_starts_over_when_a_lost_create_close_did_not_take_effect(db):
    node = StubNode()
    db.node = node
    pair = Pair(db, {"create_close"}, drop_first=True)
    original = db.cmd_create_close

    def refuse_once(args):  # the close never ran; the temp file expired meanwhile
        db.cmd_create_close = original
        db.temp.discard(int(args["fid"]))
        return original(args)

    db.cmd_create_close = refuse_once
    try:
        client = MogileFSClient(None, "d", pool=pair.pool())
        assert client.store("k", b"hello") == 5
        opens = [c for c, _ in pair.first.requests + pair.second.requests if c == "create_open"]
        assert len(opens) == 2, "a second create_open after the unconfirmed close"
        fid, length = db.keys["k"]
        assert length == 5
        assert node.files[f"/dev1/0/000/000/{fid:010d}.fid"] == b"hello"
    finally:
        pair.close()
        node.close()
