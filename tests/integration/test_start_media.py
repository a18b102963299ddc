"""app/start-media: the media tier's command, granian serving the site."""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django_mogilefs.testing import free_port
from ownenv import own_environ
from static import compose_file as cf

pytestmark = pytest.mark.integration

START_MEDIA = cf.ROOT / "app" / "start-media"


def media_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = own_environ(
        APP_DIR=str(cf.ROOT / "app"),
        DJANGO_SECRET_KEY="start-media-test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **settings,
    )
    # `python -m granian`: this interpreter's environment, where granian is installed.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def healthz(port: int) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def wait_healthy(port: int, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while healthz(port) != 200:
        assert proc.poll() is None, f"start-media exited {proc.returncode}"
        assert time.monotonic() < deadline, "the media tier did not answer /healthz"
        time.sleep(0.2)


def worker_pids(main_pid: int) -> set[int]:
    children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    return {int(pid) for pid in children}


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("MEDIA_BIND", "8001", "MEDIA_BIND: '8001' is not host:port"),
        ("MEDIA_BIND", "127.0.0.1:http", "MEDIA_BIND: '127.0.0.1:http' is not host:port"),
        ("MEDIA_WORKERS", "0", "MEDIA_WORKERS: '0' is not a positive whole number"),
        ("MEDIA_THREADS", "two", "MEDIA_THREADS: 'two' is not a positive whole number"),
    ],
)
def test_bad_settings_are_refused_before_anything_starts(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [str(START_MEDIA)],
        env=media_env(tmp_path, **{setting: value}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    # Only the error: granian never started.
    assert (result.stdout, result.stderr.strip()) == ("", f"start-media: error: {message}")


def test_serves_the_site_restarts_a_dead_worker_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(START_MEDIA)],
        env=media_env(tmp_path, MEDIA_BIND=f"127.0.0.1:{port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_healthy(port, proc)
        (worker,) = worker_pids(proc.pid)  # MEDIA_WORKERS=1
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while worker_pids(proc.pid) in (set(), {worker}):
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        wait_healthy(port, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_answers_several_first_views_at_once(tmp_path: Path) -> None:
    # Each first view waits on the tracker's get_paths: with the default threads, four at
    # once are four lookups in flight, not one after another.
    from unit.stubs import StubTracker, ok

    lock, in_flight, most = threading.Lock(), [0], [0]

    def answer(command: str, args: dict[str, str]) -> bytes:
        if command != "get_paths":
            return b"ERR unknown_command unknown\r\n"
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.5)
        with lock:
            in_flight[0] -= 1
        return ok(
            paths=3, **{f"path{i}": f"http://127.0.0.{i}:7500/dev{i}/1.fid" for i in (1, 2, 3)}
        )

    tracker, port = StubTracker(answer), free_port()
    proc = subprocess.Popen(
        [str(START_MEDIA)],
        env=media_env(tmp_path, MEDIA_BIND=f"127.0.0.1:{port}", MOGILEFS_TRACKERS=tracker.address),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def first_view(i: int) -> tuple[int, str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(
                "GET", f"/media/a{i}.png", headers={"X-Proxy-Capabilities": "reproxy-file"}
            )
            response = conn.getresponse()
            return response.status, response.getheader("X-REPROXY-URL")
        finally:
            conn.close()

    try:
        wait_healthy(port, proc)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(first_view, range(4)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        tracker.close()
    assert [status for status, _ in answers] == [200] * 4
    assert all(urls and urls.startswith("http://127.0.0.1:7500/") for _, urls in answers)
    assert most[0] == 4
