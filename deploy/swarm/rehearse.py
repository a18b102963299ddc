#!/usr/bin/env python3
"""The swarm stack on three machines of one computer, end to end: `make swarm-rehearsal`.

### Usage: deploy/swarm/rehearse.py [--keep] [--skip-e2e] [PYTEST_ARG...]
###
### Four Docker engines in containers (deploy/swarm/rehearsal: Debian's docker.io) on an
### internal bridge join one swarm; the images are built here (docker compose build, with
### the caller's COMPOSE_FILE) and loaded into them; deploy/swarm/stack.yaml is deployed
### from node1, as an operator would; once bootstrap has completed and an upload through
### each front works, the end-to-end suite runs from a container on the stack's networks,
### after a backup of the databases from the database machine (scripts/db-backup),
### with the days of a swarm as its hooks: a storage machine's engine stopped, a
### tracker's machine drained, a rolling update, a dead disk, and node4 (a spare machine)
### added as the fourth storage machine by deploying again, then retired and switched
### off. Then everything is removed (--keep leaves it running, to look). PYTEST_ARGs
### replace the suite's default selection (tests/e2e), e.g. one test file.
###
### Environment: MOGILE_IMAGE (default mogilefs-django/mogile:2.73; CI: the fake),
### APP_IMAGE, PERLBAL_IMAGE, MYSQL_IMAGE, MEMCACHED_IMAGE as the stack takes them,
### REHEARSAL_SUBNET (10.212.0.0/24: the machines' bridge).
### Exit status: 0 passed, 1 failed (what and where on stderr), 2 no usable engine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STACK = "avatars"
PREFIX = "swarm-rehearsal"
NODE_IMAGE = "mogilefs-django/swarm-node"
E2E_IMAGE = "mogilefs-django/e2e"
# Every capability but CAP_SYS_RESOURCE, which some hosts lack (--privileged then
# fails with "unable to apply caps"); the node's entrypoint remounts /sys and cgroups.
NODE_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--device-cgroup-rule", "a *:* rwm", "--cgroupns", "private",
]  # fmt: skip
# node -> labels: node1 the database and a front, node2 a front and a tracker, node3 a
# tracker; each a storage machine (docs/production.md has the same layout). node4 is
# the machine added later: labelled already, it runs mogstored4 once that is deployed.
LABELS = {
    1: {"mogile.db": "true", "mogile.front": "true", "mogile.storage": "1"},
    2: {"mogile.front": "true", "mogile.storage": "2", "mogile.tracker": "true"},
    3: {"mogile.storage": "3", "mogile.tracker": "true"},
    4: {"mogile.storage": "4"},
}
MACHINES = tuple(LABELS)
MANAGERS = (1, 2, 3)
STORAGE = (1, 2, 3)  # the machines of mogstored1..3 (node4 is the one added later)
SOURCE = "/src"  # the checkout, read-only in node1: the stack file, its config, secrets


OUTER = "python scripts/docker_api.py --engine /outer.sock"  # the engine of the machines


class Failed(Exception):
    """The rehearsal failed; the message says what."""


def log(message: str) -> None:
    print(f"rehearse: {message}", file=sys.stderr, flush=True)


def run(
    *argv: str,
    engine: str | None = None,
    check: bool = True,
    capture: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """A docker (or other) command, on ``engine`` (tcp://...) when given."""
    environ = {**os.environ, **(env or {})}
    if engine:
        environ["DOCKER_HOST"] = engine
    result = subprocess.run(
        list(argv), env=environ, capture_output=capture, text=True, timeout=timeout, check=False
    )
    if check and result.returncode:
        output = (result.stderr or result.stdout or "").strip() if capture else ""
        raise Failed(f"{shlex.join(argv)} failed ({result.returncode}): {output[-2000:]}")
    return result


@dataclass
class Phase:
    name: str
    seconds: float


@dataclass
class Rehearsal:
    keep: bool = False
    subnet: str = os.environ.get("REHEARSAL_SUBNET", "10.212.0.0/24")
    phases: list[Phase] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = self.subnet.split("/")[0].rsplit(".", 1)[0]
        self.ips = {n: f"{base}.{10 + n}" for n in MACHINES}
        self.images = {
            "APP_IMAGE": os.environ.get("APP_IMAGE", "mogilefs-django/app"),
            "MOGILE_IMAGE": os.environ.get("MOGILE_IMAGE", "mogilefs-django/mogile:2.73"),
            "PERLBAL_IMAGE": os.environ.get("PERLBAL_IMAGE", "mogilefs-django/perlbal"),
            "MYSQL_IMAGE": os.environ.get("MYSQL_IMAGE", "mysql:8.4"),
            "MEMCACHED_IMAGE": os.environ.get("MEMCACHED_IMAGE", "memcached:1.6"),
        }

    def engine(self, n: int) -> str:
        return f"tcp://{self.ips[n]}:2375"

    def node(self, n: int) -> str:
        return f"{PREFIX}-node{n}"

    def phase(self, name: str, work) -> None:  # type: ignore[no-untyped-def]
        log(f"{name}...")
        started = time.monotonic()
        work()
        self.phases.append(Phase(name, time.monotonic() - started))
        log(f"{name}: {self.phases[-1].seconds:.0f} s")

    # -- the machines ---------------------------------------------------------------------

    def build(self) -> None:
        run("docker", "compose", "--profile", "e2e", "build", capture=False)
        run("docker", "build", "--quiet", "--tag", NODE_IMAGE, str(HERE / "rehearsal"))

    def start_machines(self) -> None:
        run("docker", "network", "create", "--internal", "--subnet", self.subnet, PREFIX)
        for n in MACHINES:
            # node1 deploys: the checkout, and the outer engine for the e2e hooks.
            outer = ["--volume", "/var/run/docker.sock:/outer.sock",
                     "--volume", f"{ROOT}:{SOURCE}:ro"] if n == 1 else []  # fmt: skip
            run(
                "docker", "run", "--detach", "--name", self.node(n), "--hostname", f"node{n}",
                "--network", PREFIX, "--ip", self.ips[n], *NODE_FLAGS,
                "--volume", f"{self.node(n)}:/var/lib/docker", *outer,
                "--env", "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1", NODE_IMAGE,
            )  # fmt: skip
        for n in MACHINES:
            self.wait(f"the engine of node{n}", lambda n=n: self.answers(n), 90)

    def answers(self, n: int) -> bool:
        return run("docker", "info", engine=self.engine(n), check=False).returncode == 0

    def images_for(self, n: int) -> list[str]:
        """What machine ``n`` can be given to run: the app and mogile images anywhere
        (one-shot jobs, trackers, storage), MySQL's on the database machine, Perlbal's
        and memcached's on the fronts, the e2e runner's on node1."""
        labels = LABELS[n]
        wanted = ["APP_IMAGE", "MOGILE_IMAGE"]
        wanted += ["MYSQL_IMAGE"] if labels.get("mogile.db") == "true" else []
        wanted += ["PERLBAL_IMAGE", "MEMCACHED_IMAGE"] if labels.get("mogile.front") else []
        return [self.images[name] for name in wanted] + ([E2E_IMAGE] if n == 1 else [])

    def load_images(self) -> None:
        """docker save | docker load into each machine, all at once."""

        def load(n: int) -> None:
            wanted = self.images_for(n)
            save = subprocess.Popen(["docker", "save", *wanted], stdout=subprocess.PIPE)
            env = {**os.environ, "DOCKER_HOST": self.engine(n)}
            loaded = subprocess.run(
                ["docker", "load", "--quiet"], stdin=save.stdout, env=env, capture_output=True
            )
            if save.wait() or loaded.returncode:
                raise Failed(f"loading images into node{n}: {loaded.stderr.decode()[-500:]}")

        with concurrent.futures.ThreadPoolExecutor(len(MACHINES)) as pool:
            list(pool.map(load, MACHINES))

    def form_swarm(self) -> None:
        run("docker", "swarm", "init", "--advertise-addr", self.ips[1], engine=self.engine(1))
        for n in MACHINES[1:]:
            role = "manager" if n in MANAGERS else "worker"
            token = run("docker", "swarm", "join-token", "-q", role, engine=self.engine(1))
            run("docker", "swarm", "join", "--advertise-addr", self.ips[n], "--token",
                token.stdout.strip(), f"{self.ips[1]}:2377", engine=self.engine(n))  # fmt: skip
        for n, labels in LABELS.items():
            flags = [f for k, v in labels.items() for f in ("--label-add", f"{k}={v}")]
            run("docker", "node", "update", *flags, f"node{n}", engine=self.engine(1))

    # -- the stack ------------------------------------------------------------------------

    def deploy_command(self, *, fourth: bool = False) -> list[str]:
        """`docker stack deploy` as node1 runs it; ``fourth``: with the fourth machine."""
        env = {f"MOGSTORED{n}_ADDRESS": self.ips[n] for n in STORAGE}
        if fourth:
            env |= {"MOGSTORED4_ADDRESS": self.ips[4], "MOGSTORED4_REPLICAS": "1"}
        # The fronts are reached by the machines' addresses, and by name on the overlay.
        env["SITE_HOSTS"] = ",".join(["perlbal", "localhost", *self.ips.values()])
        env |= {**self.images, "SECRETS_DIR": f"{SOURCE}/secrets/dev"}
        # --resolve-image never: no registry to ask for digests (each try costs a timeout).
        return ["env", *(f"{k}={v}" for k, v in env.items()), "docker", "stack", "deploy",
                "--resolve-image", "never", "--compose-file",
                f"{SOURCE}/deploy/swarm/stack.yaml", STACK]  # fmt: skip

    def deploy(self) -> None:
        run("docker", "exec", self.node(1), *self.deploy_command())

    def ready(self) -> None:
        """Bootstrap completed, every service converged, and an upload through each front
        stored and served: "all tasks running" alone is not ready (the trackers' monitors
        may not have seen the devices yet)."""
        self.wait(
            "bootstrap to complete", lambda: self.task_states("bootstrap") == {"Complete"}, 600
        )
        for service in ("mogilefsd", "app", "media", "perlbal"):
            self.wait(f"{service}'s tasks to run", lambda s=service: self.running(s) >= 2, 600)
        for n in (1, 2):
            self.wait(f"an upload through node{n}'s front", lambda n=n: self.upload_works(n), 300)

    def task_states(self, service: str) -> set[str]:
        result = run("docker", "service", "ps", f"{STACK}_{service}", "--format",
                     "{{.CurrentState}}", "--filter", "desired-state=shutdown",
                     engine=self.engine(1), check=False)  # fmt: skip
        running = run("docker", "service", "ps", f"{STACK}_{service}", "--format",
                      "{{.CurrentState}}", engine=self.engine(1), check=False)  # fmt: skip
        states = {line.split()[0] for line in running.stdout.splitlines() if line}
        return states - {"Failed"} if result.returncode == 0 else set()

    def running(self, service: str) -> int:
        result = run("docker", "service", "ps", f"{STACK}_{service}", "--filter",
                     "desired-state=running", "--format", "{{.CurrentState}}",
                     engine=self.engine(1), check=False)  # fmt: skip
        return sum(line.startswith("Running") for line in result.stdout.splitlines())

    def upload_works(self, n: int) -> bool:
        site = f"http://{self.ips[n]}:8080"
        check = (
            "import secrets, sys, uuid\n"
            "sys.path[:0] = ['scripts', 'tests']\n"
            "from e2e import images\n"
            "from siteclient import SiteClient\n"
            "c = SiteClient(sys.argv[1]); user = 'gate' + uuid.uuid4().hex[:8]\n"
            "assert c.sign_up(user, secrets.token_urlsafe(16)).status_code == 302\n"
            "data = images.picture(32, 32, 'PNG', seed=1)\n"
            "assert c.upload(data, 'g.png', 'image/png').status_code == 302\n"
            "assert c.get(c.avatar_links(user).image_url).content == data\n"
        )
        python = ROOT / ".venv" / "bin" / "python"
        result = subprocess.run([str(python), "-c", check, site], cwd=ROOT, capture_output=True,
                                timeout=60, check=False)  # fmt: skip
        return result.returncode == 0

    def e2e(self, pytest_args: list[str]) -> None:
        """The suite, from a container on node1 (a manager) on the stack's networks."""
        hooks = {
            # A storage machine lost: node3's engine container (it runs mogstored3 and a
            # tracker), through the outer engine's socket.
            "E2E_STORAGE_NODE_STOP": f"{OUTER} stop {self.node(3)}",
            "E2E_STORAGE_NODE_START": f"{OUTER} start {self.node(3)}",
            # A tracker's machine drained (its tracker moves to node1, labelled for it).
            "E2E_TRACKER_DRAIN": "python scripts/docker_api.py node-label node1 mogile.tracker=true"
            " && python scripts/docker_api.py node-availability node3 drain",
            "E2E_TRACKER_UNDRAIN": "python scripts/docker_api.py node-availability node3 active",
            "E2E_ROLLING_UPDATE": "python scripts/docker_api.py service-update"
            f" {STACK}_app {STACK}_media {STACK}_perlbal",
            # A dead disk: the device's files, in the storage node's container on its machine.
            "E2E_DEVICE_DESTROY": "python scripts/docker_api.py --engine"
            f" tcp://{self.ips[1].rsplit('.', 1)[0]}.1$(echo {{host}} | tr -dc 0-9):2375"
            f" exec service={STACK}_{{host}} -- sh -c 'rm -rf /var/mogdata/dev{{devid}}/*'",
            "E2E_BOOTSTRAP": "python scripts/bootstrap.py --wait 120",
            # A machine added: node4 (labelled) gets mogstored4 by deploying again with
            # it, and the stack's bootstrap registers it; retired, it is switched off.
            "E2E_NEW_NODE_START": f"{OUTER} exec {self.node(1)} -- "
            + shlex.join(self.deploy_command(fourth=True)),
            "E2E_NEW_NODE_STOP": f"{OUTER} stop {self.node(4)}",
        }
        env = {
            "E2E_SITE_URL": "http://perlbal:8080",
            "MOGILEFS_TRACKERS": "tasks.mogilefsd:7001",
            "MOGILEFS_DOMAIN": "avatars",
            "E2E_STAFF_USERNAME": "staff",
            "E2E_STAFF_PASSWORD": (ROOT / "secrets" / "dev" / "staff_password").read_text().strip(),
            "E2E_MONITOR_DEADLINE": "180",
            "E2E_REPLICATION_DEADLINE": "120",
            **{f"MOGSTORED{n}_ADDRESS": self.ips[n] for n in STORAGE},
            **hooks,
        }
        flags = [f for k, v in env.items() for f in ("--env", f"{k}={v}")]
        e2e = f"{PREFIX}-e2e"
        run("docker", "create", "--name", e2e, "--network", f"{STACK}_backend", "--user", "0:0",
            "--volume", "/var/run/docker.sock:/var/run/docker.sock",
            "--volume", "/outer.sock:/outer.sock", *flags, E2E_IMAGE,
            "pytest", "-p", "no:cacheprovider", "-rA", *(pytest_args or ["tests/e2e"]),
            engine=self.engine(1))  # fmt: skip
        run("docker", "network", "connect", f"{STACK}_storage", e2e, engine=self.engine(1))
        result = run("docker", "start", "--attach", e2e, engine=self.engine(1), check=False,
                     capture=False, timeout=3600)  # fmt: skip
        if result.returncode:
            raise Failed(f"the end-to-end suite failed ({result.returncode})")

    def backup(self) -> None:
        """scripts/db-backup on the database machine (node1), as docs/operations.md says."""
        task = run("docker", "ps", "-q", "--filter",
                   f"label=com.docker.swarm.service.name={STACK}_mysql",
                   engine=self.engine(1)).stdout.split()  # fmt: skip
        if len(task) != 1:
            raise Failed(f"node1 runs {len(task)} {STACK}_mysql task(s), not one")
        backups = Path(os.environ.get("TMPDIR", "/tmp")) / f"{PREFIX}-backups"
        shutil.rmtree(backups, ignore_errors=True)
        backups.mkdir()
        exec_in = f"docker exec -i {self.node(1)} docker exec -i {task[0]}"
        dump = run(str(ROOT / "scripts" / "db-backup"), "backup", str(backups),
                   env={"MYSQL_EXEC": exec_in}).stdout.strip()  # fmt: skip
        text = subprocess.run(["gzip", "-dc", dump], capture_output=True, check=True).stdout
        for database in ("mogilefs", "avatars"):
            if not re.search(rf"CREATE DATABASE [^\n]*`{database}`".encode(), text):
                raise Failed(f"{dump} holds no {database} database")
        log(f"backup: {dump} ({len(text)} bytes of SQL)")
        shutil.rmtree(backups)

    # -- helpers, report, clean-up ----------------------------------------------------------

    def wait(self, what: str, check, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise Failed(f"{what}: not after {timeout:g} s")
            time.sleep(2)

    def memory(self) -> str:
        result = run("docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}",
                     *(self.node(n) for n in MACHINES), check=False)  # fmt: skip
        return "; ".join(result.stdout.split("\n")).strip("; ")

    def diagnose(self) -> None:
        for args in (("service", "ls"), ("node", "ls")):
            print(run("docker", *args, engine=self.engine(1), check=False).stdout, file=sys.stderr)
        for service in ("bootstrap", "mogilefsd", "perlbal", "app"):
            logs = run("docker", "service", "logs", "--tail", "30", f"{STACK}_{service}",
                       engine=self.engine(1), check=False)  # fmt: skip
            print(f"--- {service}\n{logs.stdout}{logs.stderr}", file=sys.stderr)

    def tear_down(self) -> None:
        for n in MACHINES:
            run("docker", "rm", "--force", "--volumes", self.node(n), check=False)
            run("docker", "volume", "rm", "--force", self.node(n), check=False)
        run("docker", "network", "rm", PREFIX, check=False)

    def report(self, total: float) -> None:
        for phase in self.phases:
            print(f"rehearse: {phase.name:32} {phase.seconds:6.0f} s", file=sys.stderr)
        print(f"rehearse: total {total:.0f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rehearse.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the machines running")
    parser.add_argument("--skip-e2e", action="store_true", help="deploy and check, no suite")
    parser.add_argument("pytest_args", nargs="*", help="the suite's selection (tests/e2e)")
    args = parser.parse_args(argv)
    if shutil.which("docker") is None or run("docker", "info", check=False).returncode:
        print(
            "rehearse: no Docker engine is reachable (no docker command, or docker info "
            "failed): the rehearsal runs four engines in containers of one "
            "(scripts/docker-engine.sh installs Debian's)",
            file=sys.stderr,
        )
        return 2
    rehearsal = Rehearsal(keep=args.keep)
    started = time.monotonic()
    # A TERM (CI's time-out, a Ctrl-C elsewhere) still tears the machines down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(rehearsal.tear_down)
        rehearsal.tear_down()  # what a killed run left
        try:
            rehearsal.phase("build the images", rehearsal.build)
            rehearsal.phase("start four machines", rehearsal.start_machines)
            rehearsal.phase("load the images into them", rehearsal.load_images)
            rehearsal.phase("form the swarm", rehearsal.form_swarm)
            rehearsal.phase("deploy the stack", rehearsal.deploy)
            rehearsal.phase("wait until it stores files", rehearsal.ready)
            log(f"memory: {rehearsal.memory()}")
            rehearsal.phase("back up the databases", rehearsal.backup)
            if not args.skip_e2e:
                rehearsal.phase("run the end-to-end suite", lambda: rehearsal.e2e(args.pytest_args))
            log(f"memory: {rehearsal.memory()}")
        except (Failed, subprocess.TimeoutExpired) as exc:
            print(f"rehearse: error: {exc}", file=sys.stderr)
            rehearsal.diagnose()
            rehearsal.report(time.monotonic() - started)
            return 1
    rehearsal.report(time.monotonic() - started)
    print("rehearse: passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
