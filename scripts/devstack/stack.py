"""The native stack under supervisor: started in readiness order, watched, stopped as one.

supervisord (our child, ``-n``) starts, restarts and stops the services, one log file each in
``<var>/logs/``; this module writes its config, starts each service once the one before is
ready, and talks to it over ``<var>/supervisor.sock`` (``dev.py`` from any shell). All run
under ``setpriv --pdeathsig``: supervisord dies with its parent, the services with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import TextIO

from ownenv import own_environ

from .config import LOOPBACK, StackConfig, StackError
from .services import BIN, TRACKER_STATE, Service, missing_packages, stack_services, tcp_open

STEP_TIMEOUT = 60.0  # every readiness wait is bounded by this
DATA = ("db.sqlite3", "storage", TRACKER_STATE)  # what make dev keeps and dev-reset removes
GROUP = "devstack"  # one supervisor group: a shutdown stops them all at once, not one a second


class DevStack:
    """Start and stop the native stack described by ``config``, or one of its services."""

    def __init__(self, config: StackConfig, *, out: TextIO | None = None, echo=False) -> None:
        self.config, self.var = config, config.var_dir.resolve()
        self.out = out or sys.stderr
        self.echo = echo  # supervisord's own log (spawned, exited...) on stdout too
        self.proc: subprocess.Popen[bytes] | None = None

    site_url = property(lambda self: self.config.site_url)
    app_url = property(lambda self: self.config.app_url)
    media_tier_url = property(lambda self: self.config.media_tier_url)
    trackers = property(lambda self: self.config.tracker_list)
    domain = property(lambda self: self.config.domain)
    mgmt_address = property(lambda self: (LOOPBACK, self.config.ports["perlbal-mgmt"]))

    def services(self) -> dict[str, Service]:
        return {s.name: s for s in stack_services(self.config)}

    @property
    def rpc(self):  # supervisor's XML-RPC interface
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.var / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://localhost", transport=transport).supervisor

    def running(self) -> bool:
        return _quietly(lambda: self.rpc.getState()["statename"] == "RUNNING")

    def info(self, name: str | None = None):
        """supervisor's record of one service (or a list of all): statename, pid..."""
        return self.rpc.getProcessInfo(f"{GROUP}:{name}") if name else self.rpc.getAllProcessInfo()

    def front_pid(self) -> int:
        """The front Perlbal's process: perlbal/start's child (the script stays, to stop it
        gracefully), not the script that supervisor started."""
        start = self.info("perlbal")["pid"]
        for child in Path(f"/proc/{start}/task/{start}/children").read_text().split():
            with contextlib.suppress(OSError):  # gone meanwhile
                if b"--config=" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return int(child)
        raise StackError(f"perlbal/start (pid {start}) has no Perlbal child")

    def staff_login(self) -> tuple[str, str]:
        """The staff account app/start makes: compose's username, the secret's password."""
        env = self.services()["app"].env
        password = Path(env["DJANGO_STAFF_PASSWORD_FILE"]).read_text().strip()
        return env["DJANGO_STAFF_USERNAME"], password

    def _write_conf(self, services: dict[str, Service]) -> Path:
        logs, sock = self.var / "logs", self.var / "supervisor.sock"
        lines = [
            f"[supervisord]\nlogfile={logs}/supervisord.log\npidfile={self.var}/supervisord.pid",
            f"childlogdir={logs}\n" + ("user=root" if os.geteuid() == 0 else ""),
            f"[unix_http_server]\nfile={sock}\nchmod=0700\n[supervisorctl]\nserverurl=unix://{sock}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory=supervisor.rpcinterface:make_main_rpcinterface",
            f"[group:{GROUP}]\nprograms={','.join(services)}",
        ]
        for s in services.values():
            command = shlex.join(_die_with_parent(["env", *map("=".join, s.env.items()), *s.argv]))
            lines += [
                f"[program:{s.name}]\ncommand={command.replace('%', '%%')}\ndirectory={s.cwd}",
                "autostart=false",  # started in order by start_service, once the one before is up
                "autorestart=false\nstartsecs=0" if s.oneshot else "autorestart=true",
                f"stopasgroup=true\nkillasgroup=true\nredirect_stderr=true\n"
                f"stdout_logfile={logs}/{s.name}.log",
            ]
        conf = self.var / "supervisord.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> DevStack:
        if problem := missing_packages():
            raise StackError(problem)
        if self.running():
            raise StackError(f"a stack already runs from {self.var}; stop it first (make dev-down)")
        if self.config.own_memcached and tcp_open(LOOPBACK, self.config.ports["memcached"]):
            # Debian starts a memcached on 11211 when the package is installed: share it.
            self._say(f"memcached: using the one already on {self.config.native()['memcached']}")
            self.config = dataclasses.replace(self.config, own_memcached=False)
        services = self.services()
        taken = [
            f"{s.port[0]}:{s.port[1]}" for s in services.values() if s.port and tcp_open(*s.port)
        ]
        if taken:
            raise StackError(
                f"in use already: {', '.join(taken)} (another stack? make dev-down stops ours)"
            )
        self._prepare_var()
        self.config.save()
        argv = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c"]
        argv += [str(self._write_conf(services)), *([] if self.echo else ["-s"])]
        path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        self.proc = subprocess.Popen(_die_with_parent(argv), env=own_environ(PATH=path))
        try:
            self._wait("supervisord", self.running, lambda: self.proc.poll() is not None)
            for name, service in services.items():
                if not service.standby:
                    self.start_service(name)
        except BaseException:
            self.stop()
            raise
        return self

    def start_service(self, name: str) -> None:
        """Start one service (``dev.py start NAME``) and wait until it is ready."""
        service = self._service(name)
        self._say(f"starting {name}")
        service.prepare()
        with contextlib.suppress(xmlrpc.client.Fault):  # already started
            self.rpc.startProcess(f"{GROUP}:{name}", False)

        def failed() -> bool:  # supervisor gave up on it, or a one-shot failed
            info = self.info(name)
            return info["statename"] in ("FATAL", "EXITED") and info["exitstatus"] != 0

        def ready() -> bool:
            if service.oneshot:
                return self.info(name)["statename"] == "EXITED"
            return service.port is None or tcp_open(*service.port)

        self._wait(name, ready, failed)

    def stop_service(self, name: str) -> None:
        """Stop one service (``dev.py stop NAME``); supervisor leaves it stopped."""
        self._service(name)
        with contextlib.suppress(xmlrpc.client.Fault):  # not running
            self.rpc.stopProcess(f"{GROUP}:{name}", True)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every service and supervisord (from any process). Safe to call twice."""
        asked = _quietly(self.rpc.shutdown)
        if self.proc is not None:
            if not asked:  # not answering yet (or any more)
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # pdeathsig then stops the services
                self.proc.wait()
            return
        pidfile, deadline = self.var / "supervisord.pid", time.monotonic() + timeout
        while asked and pidfile.exists() and time.monotonic() < deadline:  # gone as it exits
            time.sleep(0.2)

    def wait(self) -> int:
        """Until supervisord exits (``make dev-down``, or a crash); its exit status."""
        return self.proc.wait()

    def _service(self, name: str) -> Service:
        services = self.services()
        if name not in services:
            raise StackError(f"no service {name!r} here; there are: {', '.join(services)}")
        return services[name]

    def _say(self, message: str) -> None:
        print(f"devstack: {message}", file=self.out, flush=True)

    def _wait(self, what: str, ready, failed) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT
        while not _quietly(ready):
            if _quietly(failed) or time.monotonic() > deadline:
                log = self.var / "logs" / f"{what}.log"
                text = log.read_text(errors="replace") if log.exists() else ""
                tail = "\n".join(text.splitlines()[-25:])
                reason = "failed" if _quietly(failed) else f"not ready after {STEP_TIMEOUT:g}s"
                raise StackError(f"{what}: {reason}\n--- {log} ---\n{tail}")
            time.sleep(0.1)

    def _prepare_var(self) -> None:
        """Keep the data, start new logs (the last run's in logs.prev), zero the counters."""
        logs = self.var / "logs"
        if logs.exists():
            shutil.rmtree(self.var / "logs.prev", ignore_errors=True)
            logs.rename(self.var / "logs.prev")
        for new in ("logs", "prometheus", "prometheus-media"):
            shutil.rmtree(self.var / new, ignore_errors=True)
            (self.var / new).mkdir(parents=True)
        self._say(describe_data(self.var, self.config.external))


def describe_data(var: Path, external: bool) -> str:
    """What ``make dev`` says at start-up: the data it kept, or that it starts empty."""
    if not (var / "db.sqlite3").exists():
        return f"starting empty (no data in {var} yet)"
    counts = []
    with contextlib.closing(sqlite3.connect(f"file:{var / 'db.sqlite3'}?mode=ro", uri=True)) as db:
        for table, what in (("auth_user", "accounts"), ("avatars_avatar", "avatars")):
            with contextlib.suppress(sqlite3.Error):
                counts.append(f"{db.execute(f'SELECT COUNT(*) FROM {table}').fetchone()[0]} {what}")
    text = (
        f"kept the data of the last run in {var}: {', '.join(counts)} (make dev-reset empties it)"
    )
    if lost := [] if external else [name for name in DATA if not (var / name).exists()]:
        text += f"\ndevstack: warning: no {', '.join(lost)}: stored files may not be found"
    return text


def reset(var: Path) -> list[str]:
    """Remove what ``make dev`` keeps (``make dev-reset``); the names removed."""
    gone = sorted(path for name in DATA for path in var.glob(f"{name}*"))  # and -wal, .lock...
    for path in gone:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return [path.name for path in gone]


def _die_with_parent(argv: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "SIGTERM", "--", *argv] if setpriv else argv


def _quietly(call) -> bool:
    """``call()``'s truth, False when supervisord does not answer."""
    try:
        return bool(call())
    except (OSError, xmlrpc.client.Error):
        return False
