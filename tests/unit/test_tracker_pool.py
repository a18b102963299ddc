"""Failover, timeouts and dead-tracker skipping in TrackerPool."""

import socket
import threading

import pytest
from django_mogilefs.exceptions import TrackerUnavailableError, UnknownKeyError
from django_mogilefs.tracker import TrackerPool, parse_trackers

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


def test_fails_over_from_a_refused_tracker(tracker):
    pool = TrackerPool([closed_port(), tracker.address], dead_timeout=60)
    for _ in range(5):
        assert pool.request("noop") == {}
    assert len(tracker.requests) == 5


def test_skips_a_dead_tracker_until_dead_timeout(tracker, monkeypatch):
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


def test_tracker_closing_without_reply_fails_over(tracker):
    silent = StubTracker(lambda cmd, args: None)  # closes the socket without answering
    try:
        pool = TrackerPool([silent.address, tracker.address])
        for _ in range(4):
            assert pool.request("noop") == {}
    finally:
        silent.close()


def test_read_timeout_fails_over_and_the_socket_is_closed_not_reused(tracker, monkeypatch):
    monkeypatch.setattr("random.randrange", lambda n: 0)  # start at the slow one
    hold = threading.Event()

    def never(cmd, args):
        hold.wait(5)
        return b"OK \r\n"

    slow = StubTracker(never)
    try:
        pool = TrackerPool([slow.address, tracker.address], timeout=0.3, dead_timeout=60)
        for _ in range(3):
            assert pool.request("noop") == {}
        slow_tracker = next(t for t in pool._trackers if str(t) == slow.address)
        assert slow_tracker.failed_at is not None
        assert slow_tracker.idle == [], "a timed-out socket must never go back to the pool"
    finally:
        hold.set()
        slow.close()


def test_err_answers_do_not_fail_over():
    calls = []

    def answer(cmd, args):
        calls.append(cmd)
        return b"ERR unknown_key unknown_key\r\n"

    a, b = StubTracker(answer), StubTracker(answer)
    try:
        pool = TrackerPool([a.address, b.address])
        with pytest.raises(UnknownKeyError):
            pool.request("get_paths", {"domain": "d", "key": "k"})
    finally:
        a.close()
        b.close()
    assert calls == ["get_paths"]


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


def test_stale_pooled_connection_is_replaced_transparently():
    stub = StubTracker(lambda cmd, args: b"OK \r\n")
    pool = TrackerPool([stub.address], dead_timeout=60)
    pool.request("noop")
    # Simulate the tracker dropping an idle connection.
    pool._trackers[0].idle[0].sock.shutdown(socket.SHUT_RDWR)
    try:
        assert pool.request("noop") == {}
        assert pool._trackers[0].failed_at is None
    finally:
        stub.close()
