"""The native stack: the compose topology as local processes, started and stopped as one.

    from devstack import DevStack, StackConfig

    with DevStack(StackConfig.isolated(tmp_path)) as stack:   # free ports, own addresses
        requests.get(stack.site_url + "/healthz")
        stack.stop_storage_node("mogstored2")

Order: fake tracker, storage nodes (one real Perlbal per host of the cluster
description), memcached, then the bootstrap (the compose one: same script, same
description) alongside the database migrations, then gunicorn, the media tier (granian,
app/start-media) and the front Perlbal.
Every wait is bounded; any failure stops what was started and raises
:class:`StackError` with the failing service's log. With ``config.trackers`` set the
tracker and storage nodes are somebody else's: only the domain and classes are ensured.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from . import deps
from .config import LOOPBACK, ROOT, StackConfig
from .net import NotReady, http_status, memcached_answers, port_free, tcp_open, wait_for
from .procs import Supervisor, running_in_record

if TYPE_CHECKING:
    from django_mogilefs.testing import StorageNode

CLUSTER_FILE = ROOT / "mogile" / "cluster.toml"
BOOTSTRAP = ROOT / "scripts" / "bootstrap.py"
PERLBAL_START = ROOT / "perlbal" / "start"
MEDIA_START = ROOT / "app" / "start-media"
STEP_TIMEOUT = 60.0  # every wait and one-shot command is bounded by this
TRACKER_STATE = "tracker-state.sqlite3"  # the fake trackers' shared database, in var/


class StackError(RuntimeError):
    """The stack could not start (the message says which part and shows its log)."""


class DevStack:
    """Start (``start()`` or ``with``) and stop the native stack described by ``config``."""

    def __init__(self, config: StackConfig, *, out: TextIO | None = None) -> None:
        self.config = config
        self.out = out or sys.stderr
        self.var = config.var_dir.resolve()
        self.record = self.var / "processes.json"
        self.supervisor = Supervisor(self.record, self.var / "logs")
        self.nodes: list[StorageNode] = []  # only with the fake tracker

    # -- addresses ------------------------------------------------------------------

    @property
    def site_url(self) -> str:
        return self.config.site_url

    @property
    def app_url(self) -> str:
        return self.config.app_url

    @property
    def media_tier_url(self) -> str:
        return self.config.media_tier_url

    @property
    def trackers(self) -> list[str]:
        return self.config.tracker_list

    @property
    def domain(self) -> str:
        return self.config.domain

    @property
    def mgmt_address(self) -> tuple[str, int]:
        """The front Perlbal's management console."""
        return (LOOPBACK, self.config.mgmt_port)

    def front_pid(self) -> int | None:
        service = self.supervisor.services.get("perlbal")
        return service.pid if service else None

    # -- life cycle -------------------------------------------------------------------

    def __enter__(self) -> DevStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> DevStack:
        deps.check()
        busy = running_in_record(self.record)
        if busy:
            raise StackError(
                f"a stack already runs from {self.var} ({', '.join(busy)}); "
                "stop it first (make dev-down)"
            )
        self._check_ports()
        self._prepare_var()
        try:
            if not self.config.external:
                self._start_tracker()
                self._start_nodes()
            self._start_memcached()
            self._bootstrap_and_migrate()
            self._start_site()
            self._start_media()
            self._start_front()
        except BaseException:
            self.stop()
            raise
        return self

    def _check_ports(self) -> None:
        """Refuse to start at all when an address is taken, rather than half-way through."""
        c = self.config
        ports = (c.site_port, c.media_port, c.front_port, c.mgmt_port)
        wanted = [(LOOPBACK, port) for port in ports]
        if not c.external:
            wanted += [(LOOPBACK, port) for port in c.tracker_ports]
            wanted += [(address, c.node_port) for address in c.node_addresses]
        if not memcached_answers(LOOPBACK, c.memcached_port):
            wanted.append((LOOPBACK, c.memcached_port))
        taken = [f"{host}:{port}" for host, port in wanted if not port_free(host, port)]
        if taken:
            raise StackError(
                f"in use already: {', '.join(taken)} (another stack? make dev-down stops ours)"
            )

    def stop(self) -> None:
        """Stop everything this object started (newest first). Safe to call twice."""
        self.supervisor.stop_all()

    def exited(self) -> str | None:
        """A description of the first service that died on its own, if one did."""
        service = self.supervisor.exited()
        if service is not None:
            return f"{service.name} exited ({service.popen.returncode}):\n{service.tail()}"
        return None

    # -- controls for the tests ---------------------------------------------------------

    def node(self, name: str) -> StorageNode:
        try:
            return next(n for n in self.nodes if n.name == name)
        except StopIteration:
            raise KeyError(f"no storage node {name!r} in this stack") from None

    def stop_storage_node(self, name: str) -> None:
        self.node(name).stop()
        self.supervisor.write_record()

    def start_storage_node(self, name: str) -> None:
        node = self.node(name)
        node.start(timeout=STEP_TIMEOUT)
        self._label_node(node)

    def _label_node(self, node: StorageNode) -> None:
        # StorageNode.start spawns Perlbal, then the usage writer, through our group.
        perlbal, usage = self.supervisor.group.processes[-2:]
        self.supervisor.label(perlbal, node.name)
        self.supervisor.label(usage, f"{node.name}-usage")

    def manage(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run ``manage.py`` with the site's settings; its output, or StackError."""
        return self._run(
            "manage", [sys.executable, "app/manage.py", *args], {**self.site_env(), **(env or {})}
        )

    def create_staff(self, username: str, password: str) -> None:
        self.manage(
            "createstaff",
            username,
            "--skip-validation",
            env={"DJANGO_STAFF_PASSWORD": password},
        )

    # -- environment ----------------------------------------------------------------------

    def site_env(self) -> dict[str, str]:
        """The site's settings, the same variables compose passes to the app container."""
        c = self.config
        env = _base_env()
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "avatar_site.settings",
                "DATABASE_URL": f"sqlite:///{self.var / 'db.sqlite3'}",
                "MOGILEFS_TRACKERS": ",".join(self.trackers),
                "MOGILEFS_DOMAIN": c.domain,
                "MEMCACHED_LOCATION": f"{LOOPBACK}:{c.memcached_port}",
                "DJANGO_SECRET_KEY": self._secret_key(),
                "DJANGO_DEBUG": "true" if c.debug else "false",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DJANGO_STATIC_ROOT": str(self.var / "static"),
                # /metrics adds up the counters of every gunicorn worker from here.
                "PROMETHEUS_MULTIPROC_DIR": str(self.var / "prometheus"),
            }
        )
        env.update(c.extra_env)
        return env

    def cluster_env(self) -> dict[str, str]:
        """What the cluster description needs: the domain and the storage node addresses."""
        env = _base_env()
        env["MOGILEFS_DOMAIN"] = self.config.domain
        for i, address in enumerate(self.config.node_addresses, start=1):
            env[f"MOGSTORED{i}_ADDRESS"] = address
        return env

    def _secret_key(self) -> str:
        path = self.var / "secret-key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(50))
            path.chmod(0o600)
        return path.read_text().strip()

    def _prepare_var(self) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.var / "logs", ignore_errors=True)
        for counters in ("prometheus", "prometheus-media"):  # counters start at zero
            shutil.rmtree(self.var / counters, ignore_errors=True)
            (self.var / counters).mkdir()
        if not self.config.external:
            # Every part starts empty with the fake trackers' state, or the database
            # would point at keys no tracker knows.
            shutil.rmtree(self.var / "storage", ignore_errors=True)
            (self.var / "db.sqlite3").unlink(missing_ok=True)
            for leftover in self.var.glob(f"{TRACKER_STATE}*"):
                leftover.unlink()

    # -- the services -----------------------------------------------------------------------

    def _say(self, message: str) -> None:
        print(f"devstack: {message}", file=self.out, flush=True)

    def _start_tracker(self, index: int | None = None) -> None:
        """Start fake tracker ``index`` (0-based), or all of them, on one state file."""
        ports = self.config.tracker_ports
        for i in range(len(ports)) if index is None else [index]:
            port, name = ports[i], f"tracker{i + 1}"
            self._say(f"fake tracker on {LOOPBACK}:{port}")
            argv = [
                sys.executable,
                "-m",
                "django_mogilefs.testing.faketracker",
                "--listen",
                f"{LOOPBACK}:{port}",
                "--database",
                str(self.var / TRACKER_STATE),
                *self.config.tracker_args,
            ]
            self.supervisor.start(name, argv, cwd=ROOT, env=_base_env())
            self._wait_service(name, lambda port=port: tcp_open(LOOPBACK, port))

    def stop_tracker(self, index: int) -> None:
        """Stop fake tracker ``index`` (0-based); the others keep the shared state."""
        self.supervisor.stop(f"tracker{index + 1}")

    def start_tracker(self, index: int) -> None:
        self._start_tracker(index)

    def stop_media(self) -> None:
        """Stop the media tier: Perlbal then sends /media/ to gunicorn."""
        self.supervisor.stop("media")

    def start_media(self) -> None:
        self._start_media()

    def _start_nodes(self) -> None:
        from cluster_description import DescriptionError, load
        from django_mogilefs.testing import StorageNode

        try:
            desc = load(CLUSTER_FILE, self.cluster_env())
        except DescriptionError as exc:
            raise StackError(f"bad cluster description {exc}") from None
        for host in desc.hosts:
            devices = ", ".join(f"dev{devid}" for devid in host.devices)
            self._say(f"storage node {host.name} on {host.ip}:{host.port} ({devices})")
            node = StorageNode(
                host.name,
                host.ip,
                host.port,
                host.devices,
                self.var / "storage",
                group=self.supervisor.group,
            )
            self.nodes.append(node)
            try:
                node.start(timeout=STEP_TIMEOUT)
            except RuntimeError as exc:
                raise StackError(f"storage node {host.name}: {exc}") from None
            self._label_node(node)

    def _start_memcached(self) -> None:
        port = self.config.memcached_port
        if memcached_answers(LOOPBACK, port):
            # Debian starts a memcached on 11211 when the package is installed: share it.
            self._say(f"memcached: using the one already on {LOOPBACK}:{port}")
            return
        self._say(f"memcached on {LOOPBACK}:{port}")
        argv = ["memcached", "-l", LOOPBACK, "-p", str(port), "-U", "0", "-m", "64"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root without -u
        self.supervisor.start("memcached", argv, cwd=self.var, env=_base_env())
        self._wait_service("memcached", lambda: tcp_open(LOOPBACK, port))

    def _bootstrap_and_migrate(self) -> None:
        """Both one-shot steps at once: they touch different things and each takes seconds."""
        self._say("bootstrap (mogile/cluster.toml) and database migrations")
        migrate = self._spawn_oneshot(
            "migrate", [sys.executable, "app/manage.py", "migrate", "--noinput"], self.site_env()
        )
        argv = [
            sys.executable,
            str(BOOTSTRAP),
            "--cluster",
            str(CLUSTER_FILE),
            "--trackers",
            ",".join(self.trackers),
            "--wait",
            str(int(STEP_TIMEOUT)),
        ]
        if self.config.external:
            # Somebody else's cluster: ensure the domain and classes, touch nothing else.
            argv.append("--namespace-only")
        try:
            self._run("bootstrap", argv, self.cluster_env())
        finally:
            self._finish_oneshot("migrate", migrate)

    def _start_site(self) -> None:
        port = self.config.site_port
        self._say(f"gunicorn on {LOOPBACK}:{port}")
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "app" / "gunicorn.conf.py"),  # the app container's settings
            "avatar_site.wsgi:application",
            "--bind",
            f"{LOOPBACK}:{port}",
            "--workers",
            str(self.config.site_workers),
            "--graceful-timeout",
            "5",
            "--no-control-socket",
        ]
        # gunicorn imports the site from its working directory, as in the container.
        self.supervisor.start("gunicorn", argv, cwd=ROOT / "app", env=self.site_env())
        self._wait_service("gunicorn", lambda: http_status(LOOPBACK, port, "/healthz") == 200)

    def _start_media(self) -> None:
        port = self.config.media_port
        self._say(f"media tier (granian) on {LOOPBACK}:{port}")
        env = self.site_env()
        env.update(
            {
                "APP_DIR": str(ROOT / "app"),
                "MEDIA_BIND": f"{LOOPBACK}:{port}",
                # start-media runs `python -m granian`: this interpreter's.
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                # Not gunicorn's: gunicorn deletes the files in its own when it starts.
                "PROMETHEUS_MULTIPROC_DIR": str(self.var / "prometheus-media"),
            }
        )
        self.supervisor.start("media", [str(MEDIA_START)], cwd=ROOT / "app", env=env)
        self._wait_service("media", lambda: http_status(LOOPBACK, port, "/healthz") == 200)

    def _start_front(self) -> None:
        c = self.config
        self._say(f"Perlbal (reproxy) on {LOOPBACK}:{c.front_port}")
        env = _base_env()
        env.update(
            {
                "PERLBAL_BACKENDS": f"{LOOPBACK}:{c.site_port}",
                "PERLBAL_MEDIA_BACKENDS": f"{LOOPBACK}:{c.media_port}",
                "PERLBAL_LISTEN": f"{LOOPBACK}:{c.front_port}",
                "PERLBAL_MGMT_LISTEN": f"{LOOPBACK}:{c.mgmt_port}",
                "PERLBAL_NODEFILE": str(self.var / "perlbal-app-servers"),
                "PERLBAL_MEDIA_NODEFILE": str(self.var / "perlbal-media-servers"),
            }
        )
        if c.reproxy_cache_maxsize is not None:
            env["PERLBAL_REPROXY_CACHE_MAXSIZE"] = str(c.reproxy_cache_maxsize)
        self.supervisor.start("perlbal", [str(PERLBAL_START)], cwd=self.var, env=env)
        self._wait_service(
            "perlbal", lambda: http_status(LOOPBACK, c.front_port, "/healthz") == 200
        )

    # -- helpers --------------------------------------------------------------------------------

    def _wait_service(self, name: str, check) -> None:
        service = self.supervisor.services[name]

        def died() -> str | None:
            if service.running():
                return None
            return f"exited with status {service.popen.returncode}"

        try:
            wait_for(name, check, STEP_TIMEOUT, abort=died)
        except NotReady as exc:
            raise StackError(f"{exc}\n--- {service.log} ---\n{service.tail()}") from None

    def _spawn_oneshot(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        log = self.var / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            return subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def _finish_oneshot(self, name: str, proc: subprocess.Popen[bytes]) -> str:
        log = self.var / "logs" / f"{name}.log"
        try:
            proc.wait(STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise StackError(f"{name} did not finish within {STEP_TIMEOUT:g}s") from None
        finally:  # also on Ctrl-C while waiting
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = log.read_text(errors="replace")
        if proc.returncode != 0:
            tail = "\n".join(text.splitlines()[-25:])
            raise StackError(f"{name} failed (exit {proc.returncode}):\n{tail}")
        return text

    def _run(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> str:
        return self._finish_oneshot(name, self._spawn_oneshot(name, argv, env))


def _base_env() -> dict[str, str]:
    """The caller's environment without the settings this stack sets itself.

    A test run exports DJANGO_SETTINGS_MODULE=testsettings and maybe MOGILEFS_*; none
    of that may leak into the stack's processes.
    """
    drop = (
        "DJANGO_",
        "FAKETRACKER_",
        "MOGILEFS_",
        "MOGSTORED",
        "PERLBAL_",
        "MEDIA_",
        "GRANIAN_",
        "DATABASE_URL",
        "CACHE_URL",
        "MEMCACHED_LOCATION",
        "AVATAR_",
        "PYTHONPATH",
    )
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def wait_forever(stack: DevStack, poll: float = 1.0) -> str:
    """Block until a service dies; the reason. Ctrl-C and SIGTERM raise out of here."""
    while True:
        reason = stack.exited()
        if reason:
            return reason
        for node in stack.nodes:
            if not node.running:
                return f"storage node {node.name} stopped; see {node.log_path}"
        time.sleep(poll)
