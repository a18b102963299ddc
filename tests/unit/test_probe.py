"""Probing a device's usage file as the tracker's monitor does (django_mogilefs.probe)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from django_mogilefs.cluster import HostInfo
from django_mogilefs.probe import SLOW_FAILURE, Probe, Verdict, probe_all, probe_usage

from .stubs import ScriptedPort, SilentPort, StubNode, closed_port

pytestmark = pytest.mark.unit

USAGE = b"available: 900\ndevice: /dev/vda\ntime: 1795639837\ntotal: 1000\nuse: 10%\nused: 100\n"


@pytest.fixture
def node() -> Iterator[StubNode]:
    node = StubNode()
    node.files["/dev1/usage"] = USAGE
    yield node
    node.close()


@pytest.fixture
def silent() -> Iterator[SilentPort]:
    port = SilentPort()
    yield port
    port.close()


def probe_script(script: Callable[[socket.socket], None], timeout: float) -> tuple[Probe, float]:
    """Probe a node that plays ``script`` on each connection: the probe, and how long it took."""
    port = ScriptedPort(script)
    try:
        started = time.monotonic()
        probe = probe_usage(f"http://{port.address}/dev1/usage", timeout=timeout)
        return probe, time.monotonic() - started
    finally:
        port.close()


def test_a_node_that_serves_its_usage_file_answers(node):
    probe = probe_usage(node.url("/dev1/usage"), timeout=1.0)
    assert probe.verdict is Verdict.ANSWERS and probe.answers
    assert probe.seconds < SLOW_FAILURE
    assert probe.detail.startswith("HTTP 200 in ")
    assert node.log == [("GET", "/dev1/usage")]


def test_a_missing_device_directory_is_a_quick_failure(node):
    # mogstored answers 404 when dev2/ does not exist: the tracker marks the device unreachable.
    probe = probe_usage(node.url("/dev2/usage"), timeout=1.0)
    assert (probe.verdict, probe.detail) == (Verdict.FAILS, "HTTP 404")


def test_a_refused_port_is_a_quick_failure():
    started = time.monotonic()
    probe = probe_usage(f"http://{closed_port()}/dev1/usage", timeout=1.0)
    assert (probe.verdict, probe.detail) == (Verdict.FAILS, "Connection refused")
    assert time.monotonic() - started < SLOW_FAILURE


def test_a_node_that_never_answers_times_out(silent):
    started = time.monotonic()
    probe = probe_usage(f"http://{silent.address}/dev1/usage", timeout=0.7)
    elapsed = time.monotonic() - started
    assert probe.verdict is Verdict.NO_ANSWER
    assert probe.detail == "no answer within 0.7 s"
    assert 0.7 <= elapsed < 1.2


def test_a_failure_after_half_a_second_counts_as_gone():
    """The tracker's rule: a failure after 0.5 s marks the host, not the device."""

    def hang_up_late(conn: socket.socket) -> None:
        conn.recv(1024)  # read the request, so closing is a clean end, not a reset
        time.sleep(0.6)

    probe, _ = probe_script(hang_up_late, timeout=2.0)
    assert (probe.verdict, probe.detail) == (Verdict.NO_ANSWER, "no HTTP answer")
    assert 0.6 <= probe.seconds < 1.5


def test_a_trickling_node_cannot_stretch_the_deadline():
    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.0 200 OK\r\n")
        for _ in range(50):
            conn.sendall(b"X-Slow: 1\r\n")
            time.sleep(0.1)

    probe, elapsed = probe_script(trickle, timeout=0.6)
    assert probe.verdict is Verdict.NO_ANSWER
    assert elapsed < 0.9


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"total: 1000\n", "the usage file has no used and total"),
        (b"used: 0\ntotal: 1000\n", "the usage file has no used and total"),
        (b"<h1>It works</h1>", "the usage file has no used and total"),
    ],
)
def test_a_usage_file_without_used_and_total_is_reported(node, body, detail):
    node.files["/dev1/usage"] = body
    probe = probe_usage(node.url("/dev1/usage"), timeout=1.0)
    assert (probe.verdict, probe.detail) == (Verdict.BAD_USAGE, detail)


def test_not_http_and_bad_urls_fail_cleanly():
    def garbage(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n")

    probe, _ = probe_script(garbage, timeout=1.0)
    assert (probe.verdict, probe.detail) == (Verdict.FAILS, "not an HTTP answer")
    bad = probe_usage("http://127.0.0.1:notaport/dev1/usage", timeout=1.0)
    assert bad.verdict is Verdict.FAILS and bad.detail.startswith("bad URL: ")


def test_probes_run_in_parallel(node, silent):
    urls = [f"http://{silent.address}/dev{n}/usage" for n in range(1, 7)]
    urls += [node.url("/dev1/usage"), f"http://{closed_port()}/dev9/usage"]
    started = time.monotonic()
    probes = probe_all(urls, timeout=0.6)
    elapsed = time.monotonic() - started
    assert elapsed < 1.1  # one timeout, not six
    assert list(probes) == urls
    assert [p.verdict for p in probes.values()] == [Verdict.NO_ANSWER] * 6 + [
        Verdict.ANSWERS,
        Verdict.FAILS,
    ]


def test_the_total_time_is_bounded_by_the_budget(silent):
    urls = [f"http://{silent.address}/dev{n}/usage" for n in range(1, 5)]
    started = time.monotonic()
    probes = probe_all(urls, timeout=0.6, budget=1.0, workers=1)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.3
    verdicts = [p.verdict for p in probes.values()]
    # One worker: the first probe times out at 0.6 s, the second is cut off by the budget.
    assert verdicts == [Verdict.NO_ANSWER] + [Verdict.NOT_PROBED] * 3
    assert probes[urls[3]].detail == "not probed within 1 s"
    assert probes[urls[3]].url == urls[3]


def test_probe_all_of_nothing_and_of_duplicates(node):
    assert probe_all([]) == {}
    url = node.url("/dev1/usage")
    assert list(probe_all([url, url], timeout=1.0)) == [url]
    assert node.log == [("GET", "/dev1/usage")]


def test_usage_url_is_on_the_get_port_when_the_host_has_one():
    host = HostInfo(hostid=1, name="stor1", ip="10.0.0.1", http_port=7500, status="alive")
    assert host.usage_url(3) == "http://10.0.0.1:7500/dev3/usage"
    split = HostInfo(1, "stor1", "10.0.0.1", 7500, "alive", http_get_port=7600)
    assert split.usage_url(3) == "http://10.0.0.1:7600/dev3/usage"
