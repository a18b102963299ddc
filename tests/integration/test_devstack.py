"""``make dev`` as a user runs it: data kept across restarts, dev-reset, status, supervision."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from compose_yaml import ROOT
from ownenv import own_environ
from PIL import Image
from siteclient import SiteClient
from waiting import wait_until

pytestmark = pytest.mark.integration

DEV = [sys.executable, str(ROOT / "scripts" / "dev.py")]
READY = re.compile(r"The avatar site is ready at (http://\S+)")
PASSWORD = "a-devstack-test-password-1"


def dev(var: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEV, "--var-dir", str(var), *args],
        env=own_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Up:
    """``dev.py up --isolated`` in the background, as ``make dev`` runs it; Ctrl-C stops it."""

    def __init__(self, var: Path) -> None:
        self.proc = subprocess.Popen(
            [*DEV, "--var-dir", str(var), "up", "--isolated"],
            env=own_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.ctrl_c()
                pytest.fail("dev.py up ended before ready:\n" + "".join(self.lines))
            self.lines.append(line)
            if match := READY.search(line):
                self.url = match.group(1)
                return
        self.ctrl_c()
        pytest.fail("not ready after 180 s:\n" + "".join(self.lines))

    @property
    def said(self) -> str:
        return "".join(line for line in self.lines if line.startswith("devstack:"))

    def ctrl_c(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        rest, _ = self.proc.communicate(timeout=90)
        return rest

    def __enter__(self) -> Up:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.ctrl_c()


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def pid_of(var: Path, service: str) -> int | None:
    match = re.search(rf"^  {service} +RUNNING +pid (\d+)", dev(var, "status").stdout, re.M)
    return int(match.group(1)) if match else None


def test_a_restart_keeps_the_data_dev_reset_empties_it(tmp_path: Path) -> None:
    var, data = tmp_path / "dev", picture()
    with Up(var) as up:
        assert f"starting empty (no data in {var} yet)" in up.said
        client = SiteClient(up.url)
        assert client.sign_up("keeper", PASSWORD).status_code == 302
        assert client.upload(data, "me.png", "image/png").status_code == 302
        links = client.avatar_links("keeper")
        assert client.get(links.image_url).content == data
        assert dev(var, "status").returncode == 0
        up.ctrl_c()
    assert (var / "logs" / "app.log").exists()

    with Up(var) as up:
        assert f"kept the data of the last run in {var}: 2 accounts, 1 avatars" in up.said
        assert "warning" not in up.said
        client = SiteClient(up.url)
        assert client.log_in("keeper", PASSWORD).status_code == 302
        assert client.avatar_links("keeper") == links
        assert client.get(links.image_url).content == data
        # The previous run's logs are kept, next to this run's.
        assert "Applying auth.0001_initial" in (var / "logs.prev" / "app.log").read_text()
        refused = dev(var, "reset")
        assert refused.returncode == 1 and "stop it first" in refused.stdout

    done = dev(var, "reset")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "db.sqlite3" in done.stdout and "tracker-state.sqlite3" in done.stdout
    with Up(var) as up:
        assert "starting empty" in up.said
        assert SiteClient(up.url).log_in("keeper", PASSWORD).status_code != 302


def test_status_when_stopped_and_a_killed_service_is_restarted(tmp_path: Path) -> None:
    var = tmp_path / "dev"
    stopped = dev(var, "status")
    assert (stopped.returncode, stopped.stdout.split("(")[0]) == (3, "devstack: not running ")
    make = subprocess.run(
        ["make", "-s", "dev-status", f"DEV_ARGS=--var-dir {var}"],
        cwd=ROOT,
        env=own_environ(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert make.returncode == 0 and "not running" in make.stdout, make.stdout + make.stderr
    assert "Error" not in make.stderr

    with Up(var) as up:
        before = pid_of(var, "app")
        os.kill(before, signal.SIGKILL)
        after = wait_until(
            "app running again", lambda: (p := pid_of(var, "app")) != before and p, 60
        )
        assert after != before
        assert wait_until("the site answers", lambda: SiteClient(up.url).get("/healthz").ok, 60)
        log = (var / "logs" / "supervisord.log").read_text()
        assert "exited: app (terminated by SIGKILL; not expected)" in log

        # The e2e suite's fault commands: one storage node down, then back.
        assert dev(var, "stop", "mogstored2").returncode == 0
        assert re.search(r"^  mogstored2 +STOPPED", dev(var, "status").stdout, re.M)
        assert dev(var, "status").returncode == 1  # not everything runs
        assert dev(var, "start", "mogstored2").returncode == 0
        assert pid_of(var, "mogstored2") or wait_until(
            "mogstored2", lambda: pid_of(var, "mogstored2"), 60
        )
        unknown = dev(var, "stop", "mogstored9")
        assert unknown.returncode == 1 and "no service 'mogstored9'" in unknown.stderr
        said = up.ctrl_c()
    assert "devstack: stopped." in said
    assert dev(var, "status").returncode == 3
