"""Failover, timeouts and dead-tracker skipping in TrackerPool."""

import socket
import threading
import time

import pytest
from django_mogilefs.exceptions import TrackerUnavailableError, UnknownKeyError
from django_mogilefs.tracker import TrackerPool, parse_trackers, resolve

from .stubs import StubTracker, closed_port

pytestmark = pytest.mark.unit


def counting_socket(attempts):
    """A socket module that records every address it connects to."""

    class Counting:
        @staticmethod
        def create_connection(address, timeout=None):
            attempts.append(address)
            return socket.create_connection(address, timeout=timeout)

    return Counting


@pytest.fixture
def tracker():
    stub = StubTracker(lambda cmd, args: b"OK \r\n")
    yield stub
    stub.close()


def test_parse_trackers_accepts_strings_and_lists():
    assert parse_trackers("a:1, b") == [("a", 1), ("b", 7001)]
    assert parse_trackers(["a:1"]) == [("a", 1)]
    with pytest.raises(ValueError):
        parse_trackers("")
    with pytest.raises(ValueError):
        parse_trackers("a:notaport")
    assert parse_trackers("[::1]:7002,[fe80::1],::1") == [
        ("::1", 7002),
        ("fe80::1", 7001),
        ("::1", 7001),
    ]


def test_fails_over_from_a_refused_tracker(tracker):
    pool = TrackerPool([closed_port(), tracker.address], dead_timeout=60)
    for _ in range(5):
        assert pool.request("noop") == {}
    assert len(tracker.requests) == 5


def test_skips_a_dead_tracker_until_dead_timeout(tracker, monkeypatch):
    monkeypatch.setattr("random.randrange", lambda n: 0)  # the dead one comes first
    dead = closed_port()
    attempts = []
    Counting = counting_socket(attempts)
    pool = TrackerPool([dead, tracker.address], dead_timeout=60, socket_module=Counting)
    for _ in range(10):
        pool.request("noop")
    dead_host, dead_port = dead.split(":")
    assert attempts.count((dead_host, int(dead_port))) == 1, "the dead one is tried once only"


def test_a_dead_tracker_is_tried_again_after_dead_timeout(tracker, monkeypatch):
    monkeypatch.setattr("random.randrange", lambda n: 0)  # always start at the dead one
    dead = closed_port()
    attempts = []
    Counting = counting_socket(attempts)
    pool = TrackerPool([dead, tracker.address], dead_timeout=0, socket_module=Counting)
    pool.request("noop")
    pool._trackers[1].idle.clear()  # force a new connection each time
    pool.request("noop")
    dead_host, dead_port = dead.split(":")
    assert attempts.count((dead_host, int(dead_port))) == 2


def test_start_tracker_is_random():
    hits = {"a": 0, "b": 0}

    def answer(name):
        def reply(cmd, args):
            hits[name] += 1
            return b"OK \r\n"

        return reply

    a, b = StubTracker(answer("a")), StubTracker(answer("b"))
    try:
        for _ in range(40):
            TrackerPool([a.address, b.address]).request("noop")
    finally:
        a.close()
        b.close()
    assert hits["a"] > 0 and hits["b"] > 0, hits


def test_all_trackers_down_is_a_typed_error():
    pool = TrackerPool([closed_port(), closed_port()])
    with pytest.raises(TrackerUnavailableError) as info:
        pool.request("noop")
    assert "noop" in str(info.value)


def test_tracker_closing_without_reply_fails_over(tracker, monkeypatch):
    monkeypatch.setattr("random.randrange", lambda n: 0)  # the silent one comes first
    silent = StubTracker(lambda cmd, args: None)  # closes the socket without answering
    try:
        pool = TrackerPool([silent.address, tracker.address])
        for _ in range(4):
            assert pool.request("noop") == {}
        assert silent.commands() == ["noop"], "a dead tracker is skipped afterwards"
        assert len(tracker.requests) == 4
    finally:
        silent.close()


def test_a_timed_out_request_is_not_sent_again_to_the_same_tracker():
    """A pooled connection that times out is dropped, and the request is not resent on it."""
    release = threading.Event()
    calls = []

    def answer(cmd, args):
        calls.append(cmd)
        if cmd == "delete":
            release.wait(5)  # slower than the client's timeout
        return b"OK \r\n"

    slow = StubTracker(answer)
    try:
        pool = TrackerPool([slow.address], timeout=0.3, dead_timeout=60)
        pool.request("noop")  # leaves a pooled connection
        pooled = pool._trackers[0].idle[0]
        started = time.monotonic()
        with pytest.raises(TrackerUnavailableError):
            pool.request("delete", {"domain": "d", "key": "k"})
        elapsed = time.monotonic() - started
        assert calls.count("delete") == 1, "the request must not be sent twice"
        assert elapsed < 0.55, f"waited {elapsed:.2f} s: more than one timeout"
        assert pooled.sock.fileno() == -1, "the timed-out socket is closed"
        assert pool._trackers[0].idle == []
        release.set()
        # The tracker answers again: a fresh connection, and the late answer never leaks in.
        pool._trackers[0].failed_at = None
        assert pool.request("noop", {"callid": "2"}) == {}
    finally:
        release.set()
        slow.close()


def test_an_idle_connection_closed_by_the_tracker_is_replaced_transparently():
    stub = StubTracker(lambda cmd, args: b"OK \r\n")
    stub.hang_up_after_answer = True  # the tracker closes each connection when idle
    try:
        pool = TrackerPool([stub.address], dead_timeout=60)
        pool.request("noop")
        assert len(pool._trackers[0].idle) == 1
        time.sleep(0.1)  # let the close arrive
        assert pool.request("noop") == {}
        assert stub.commands() == ["noop", "noop"]
        assert pool._trackers[0].failed_at is None
    finally:
        stub.close()


def test_err_answers_do_not_fail_over():
    def answer(cmd, args):
        return b"ERR unknown_key unknown_key\r\n"

    a, b = StubTracker(answer), StubTracker(answer)
    try:
        pool = TrackerPool([a.address, b.address])
        with pytest.raises(UnknownKeyError):
            pool.request("get_paths", {"domain": "d", "key": "k"})
    finally:
        a.close()
        b.close()
    assert a.commands() + b.commands() == ["get_paths"]


def test_connections_are_reused(tracker):
    pool = TrackerPool([tracker.address])
    for _ in range(5):
        pool.request("noop")
    # One connection served every request (the stub logs by arrival, one handler thread).
    assert len(pool._trackers[0].idle) == 1


def test_connect_timeout_is_passed_to_connect():
    seen = {}

    class Recording:
        @staticmethod
        def create_connection(address, timeout=None):
            seen["timeout"] = timeout
            raise ConnectionRefusedError

    pool = TrackerPool(["127.0.0.1:1"], connect_timeout=1.5, socket_module=Recording)
    with pytest.raises(TrackerUnavailableError):
        pool.request("noop")
    assert seen["timeout"] == 1.5


def test_a_tracker_whose_name_does_not_resolve_in_time_is_skipped(tracker, monkeypatch):
    # A stopped container's name on Docker's internal network: the lookup hangs.
    real = socket.getaddrinfo
    hanging = threading.Event()

    def getaddrinfo(host, *args, **kwargs):
        if host == "gone.internal":
            hanging.wait(5)
            raise socket.gaierror("never answered")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr("random.randrange", lambda n: 0)  # the hanging name comes first
    pool = TrackerPool(["gone.internal:7001", tracker.address], connect_timeout=0.2)
    started = time.monotonic()
    try:
        assert pool.request("noop") == {}
        assert time.monotonic() - started < 2  # not the lookup's 5 s
        assert len(tracker.requests) == 1
    finally:
        hanging.set()


def test_names_are_resolved_and_lookup_errors_fail_over(tracker, monkeypatch):
    assert resolve("localhost", 7001, 1.0)[0] in {"127.0.0.1", "::1"}
    assert resolve("10.1.2.3", 7001, 1.0) == ("10.1.2.3", 7001)
    pool = TrackerPool(["no-such-host.invalid:7001", tracker.address])
    monkeypatch.setattr("random.randrange", lambda n: 0)
    assert pool.request("noop") == {}


def test_every_address_of_a_name_is_a_tracker_and_a_moved_one_is_found(monkeypatch):
    """A Swarm service's tasks.NAME: each task is a tracker; one that stops is failed
    over from, and one that starts elsewhere is used once the name says so."""
    first = StubTracker(lambda c, a: b"OK \r\n", "127.0.0.1")
    second = StubTracker(lambda c, a: b"OK \r\n", "127.0.0.2", first.port)
    addresses = ["127.0.0.1", "127.0.0.2"]
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "tasks.mogilefsd":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr("django_mogilefs.tracker.socket.getaddrinfo", getaddrinfo)
    pool = TrackerPool(f"tasks.mogilefsd:{first.port}", resolve_interval=0.05, max_idle=0)
    deadline = time.monotonic() + 5
    while not (first.requests and second.requests):
        assert time.monotonic() < deadline, "not every address got a request"
        pool.request("noop")
        time.sleep(0.01)
    first.close()  # that task stops; the name still lists it for a while
    for _ in range(20):
        pool.request("noop")
    third = StubTracker(lambda c, a: b"OK \r\n", "127.0.0.3", first.port)
    addresses[:] = ["127.0.0.2", "127.0.0.3"]  # it started on another machine
    deadline = time.monotonic() + 5
    while not third.requests:
        assert time.monotonic() < deadline, "the moved tracker was never asked"
        pool.request("noop")
        time.sleep(0.01)
    assert pool.addresses == [f"tasks.mogilefsd:{first.port}"]
    pool.close()
    second.close()
    third.close()
