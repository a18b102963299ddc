"""The stack under test: a running one named by E2E_SITE_URL, or the native stack.

Environment (all optional):

* ``E2E_SITE_URL``: the site through Perlbal, e.g. ``http://perlbal:8080``. Then
  ``MOGILEFS_TRACKERS`` and ``MOGILEFS_DOMAIN`` are required too (the tests ask the
  tracker directly), and nothing is started. Unset: a session fixture starts the
  native stack (``scripts/devstack``) on free ports and its own loopback addresses,
  so it runs next to ``make dev``, and stops it at the end; its fault hooks below are
  then ``scripts/dev.py --var-dir <its var dir> stop|start mogstored2|mogilefsd|media``.
* ``E2E_MEDIA_URL`` (``/media/``): the site's ``MOGILEFS_MEDIA_URL``.
* ``E2E_APP_URL``: the app server itself, behind Perlbal (e.g. ``http://app:8000``),
  where the suite reads ``/metrics``; without it those tests are skipped there.
* ``E2E_MEDIA_TIER_URL``: the media tier itself (e.g. ``http://media:8001``), the app
  servers Perlbal sends ``/media/`` to, where the reproxy answers are counted; unset,
  they are looked for at ``E2E_APP_URL`` (a deployment without a media tier).
* ``E2E_AVATAR_MAX_BYTES`` (5 MiB): the site's ``AVATAR_MAX_BYTES``.
* ``E2E_REPLICATION_DEADLINE`` (60 s): how long replication may take.
* ``E2E_MONITOR_DEADLINE`` (60 s): how long the tracker may take to see a node go or return.
* ``E2E_STAFF_USERNAME`` / ``E2E_STAFF_PASSWORD`` (or ``E2E_STAFF_PASSWORD_FILE``): a
  staff account, for the status page (the suite's own stack has make dev's: app/start makes it).
* ``E2E_STORAGE_NODE_STOP`` / ``E2E_STORAGE_NODE_START``: shell commands that stop
  and start one storage node of a stack the suite did not start (for example
  ``docker compose stop mogstored2``); without them that test is skipped there.
* ``E2E_TRACKER_STOP`` / ``E2E_TRACKER_START``: the same for one of the trackers
  (``MOGILEFS_TRACKERS`` must list at least two).
* ``E2E_MEDIA_TIER_STOP`` / ``E2E_MEDIA_TIER_START``: the same for the media tier (all
  of its servers).
* ``E2E_DEVICE_DESTROY``: a command that destroys one device's files, with ``{host}``
  (the tracker's host name) and ``{devid}`` filled in (compose: ``rm -rf`` in the
  node's volume); the dead-disk test marks that device dead for good.
* ``E2E_NEW_NODE_START`` / ``E2E_NEW_NODE_STOP``: commands that bring up a storage
  machine the cluster does not have yet and register it (its bootstrap), and switch it
  off again; the add-and-retire test spreads files onto it and then retires it for good.
* ``E2E_BOOTSTRAP``: the deployment's bootstrap command: run again, it changes nothing,
  and after a disk died it reports the dead device and leaves it dead.
* ``E2E_TRACKER_DRAIN`` / ``E2E_TRACKER_UNDRAIN``: drain the machine of a tracker (it
  moves) and make it active again; ``E2E_ROLLING_UPDATE``: replace app, media and
  Perlbal one task at a time (swarm: docker service update --force), returning when done.
* ``E2E_SCREENSHOT_DIR``: where the browser test also saves its screenshots
  (``make screenshots`` uses docs/screenshots).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from django_mogilefs.client import MogileFSClient
from django_mogilefs.cluster import ClusterAdmin, DeviceInfo
from siteclient import SiteClient, key_of

if TYPE_CHECKING:
    from devstack import DevStack

PASSWORD = "e2e-" + secrets.token_urlsafe(12)
DEV_PY = Path(__file__).resolve().parents[2] / "scripts" / "dev.py"
REPLICATION_DEADLINE = float(os.environ.get("E2E_REPLICATION_DEADLINE", "60"))
# How long the tracker's monitor may take to notice a node going or coming back (a real
# tracker re-tests writeability every 15 s, and a restarted mogstored needs a moment).
MONITOR_DEADLINE = float(os.environ.get("E2E_MONITOR_DEADLINE", "60"))


def _env(name: str, default: str = "") -> str:
    """``$NAME``, else the content of the file named by ``$NAME_FILE`` (compose secrets)."""
    value = os.environ.get(name, "").strip()
    if not value and os.environ.get(f"{name}_FILE"):
        value = Path(os.environ[f"{name}_FILE"]).read_text().strip()
    return value or default


@dataclass
class Target:
    """The stack the tests talk to, and what they may do to it."""

    site_url: str
    trackers: list[str]
    domain: str
    media_url: str = "/media/"
    staff: tuple[str, str] | None = None
    stack: DevStack | None = None  # when the suite started the stack itself
    # gunicorn itself, behind Perlbal (E2E_APP_URL for a stack the suite did not start).
    app_url: str | None = None
    # The media tier itself, behind Perlbal's media service (E2E_MEDIA_TIER_URL); None: the
    # app servers answer the requests for stored files too.
    media_tier_url: str | None = None
    node_hooks: tuple[str, str] | None = None
    tracker_hooks: tuple[str, str] | None = None
    media_tier_hooks: tuple[str, str] | None = None
    device_destroy: str | None = None  # E2E_DEVICE_DESTROY, with {host} and {devid}
    new_node_hooks: tuple[str, str] | None = None
    bootstrap: str | None = None
    tracker_drain_hooks: tuple[str, str] | None = None  # E2E_TRACKER_DRAIN / _UNDRAIN
    rolling_update: str | None = None  # E2E_ROLLING_UPDATE
    admin: ClusterAdmin = field(init=False)

    def __post_init__(self) -> None:
        self.admin = ClusterAdmin(self.trackers)

    def client(self) -> SiteClient:
        return SiteClient(self.site_url)

    def key(self, url: str) -> str:
        return key_of(url, self.media_url)

    # -- faults: one storage node, one tracker or the media tier going away -------------

    @property
    def can_stop_a_node(self) -> bool:
        return self.node_hooks is not None

    def stop_a_node(self) -> None:
        """Stop one storage node (E2E_STORAGE_NODE_STOP)."""
        run_hook(self.node_hooks[0])

    def start_the_node(self) -> None:
        run_hook(self.node_hooks[1])

    def devices(self) -> list[DeviceInfo]:
        return [d for d in self.admin.get_devices() if d.status == "alive"]

    @property
    def can_stop_a_tracker(self) -> bool:
        return len(self.trackers) >= 2 and self.tracker_hooks is not None

    def stop_a_tracker(self) -> None:
        """Stop the first tracker (E2E_TRACKER_STOP)."""
        run_hook(self.tracker_hooks[0])

    def start_the_tracker(self) -> None:
        run_hook(self.tracker_hooks[1])

    @property
    def can_stop_the_media_tier(self) -> bool:
        return self.media_tier_hooks is not None

    def stop_the_media_tier(self) -> None:
        """Stop the media tier (E2E_MEDIA_TIER_STOP)."""
        run_hook(self.media_tier_hooks[0])

    def start_the_media_tier(self) -> None:
        run_hook(self.media_tier_hooks[1])

    # -- disks and machines, for good --------------------------------------------------

    def destroy_device(self, host: str, devid: int) -> None:
        """Run E2E_DEVICE_DESTROY for one device."""
        assert self.device_destroy is not None
        run_hook(self.device_destroy.format(host=host, devid=devid))

    def start_new_node(self) -> None:
        assert self.new_node_hooks is not None
        run_hook(self.new_node_hooks[0])

    def stop_new_node(self) -> None:
        assert self.new_node_hooks is not None
        run_hook(self.new_node_hooks[1])

    def clusterctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """scripts/clusterctl.py against this cluster's trackers."""
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "clusterctl.py"), *args],
            env={**os.environ, "MOGILEFS_TRACKERS": ",".join(self.trackers)},
            capture_output=True,
            text=True,
            timeout=1800,
        )


ROOT = Path(__file__).resolve().parents[2]


def run_hook(command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A hook command; a failure fails the test with what it printed."""
    result = subprocess.run(
        command, shell=True, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode:
        pytest.fail(
            f"hook failed ({result.returncode}): {command}\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result


def _external_target() -> Target:
    site_url = _env("E2E_SITE_URL").rstrip("/")
    trackers = [t.strip() for t in _env("MOGILEFS_TRACKERS").split(",") if t.strip()]
    domain = _env("MOGILEFS_DOMAIN")
    if not trackers or not domain:
        pytest.fail(
            "E2E_SITE_URL is set, so MOGILEFS_TRACKERS and MOGILEFS_DOMAIN are required",
            pytrace=False,
        )
    try:
        requests.get(f"{site_url}/healthz", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"E2E_SITE_URL={site_url}: /healthz failed: {exc}", pytrace=False)
    staff = (_env("E2E_STAFF_USERNAME"), _env("E2E_STAFF_PASSWORD"))
    return Target(
        site_url,
        trackers,
        domain,
        media_url=_env("E2E_MEDIA_URL", "/media/"),
        app_url=_env("E2E_APP_URL").rstrip("/") or None,
        media_tier_url=_env("E2E_MEDIA_TIER_URL").rstrip("/") or None,
        staff=staff if all(staff) else None,
        **_hooks(),
    )


def _hooks() -> dict[str, Any]:
    """The E2E_*_STOP / E2E_*_START commands, for nodes and trackers not started here."""
    node = (_env("E2E_STORAGE_NODE_STOP"), _env("E2E_STORAGE_NODE_START"))
    tracker = (_env("E2E_TRACKER_STOP"), _env("E2E_TRACKER_START"))
    media = (_env("E2E_MEDIA_TIER_STOP"), _env("E2E_MEDIA_TIER_START"))
    new_node = (_env("E2E_NEW_NODE_START"), _env("E2E_NEW_NODE_STOP"))
    drain = (_env("E2E_TRACKER_DRAIN"), _env("E2E_TRACKER_UNDRAIN"))
    return {
        "node_hooks": node if all(node) else None,
        "tracker_hooks": tracker if all(tracker) else None,
        "media_tier_hooks": media if all(media) else None,
        "device_destroy": _env("E2E_DEVICE_DESTROY") or None,
        "new_node_hooks": new_node if all(new_node) else None,
        "bootstrap": _env("E2E_BOOTSTRAP") or None,
        "tracker_drain_hooks": drain if all(drain) else None,
        "rolling_update": _env("E2E_ROLLING_UPDATE") or None,
    }


def _dev_hooks(stack: DevStack) -> dict[str, Any]:
    """The same hooks for the suite's own native stack: ``scripts/dev.py`` commands."""
    dev = shlex.join([sys.executable, str(DEV_PY), "--var-dir", str(stack.var)])

    def hooks(*services: str) -> tuple[str, str]:
        return (
            " && ".join(f"{dev} stop {s}" for s in services),
            " && ".join(f"{dev} start {s}" for s in services),
        )

    media = {"media_tier_hooks": hooks("media")}
    if stack.config.external:  # on a cluster given by MOGILEFS_TRACKERS, its nodes are not ours
        return {**_hooks(), **media}
    bootstrap = stack.services()["bootstrap"]

    def bootstrap_command(**extra: str) -> str:
        """The stack's bootstrap service as a command (in its directory, on its PATH)."""
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = [f"{k}={v}" for k, v in {**bootstrap.env, "PATH": path, **extra}.items()]
        return f"cd {shlex.quote(str(bootstrap.cwd))} && " + shlex.join(
            ["env", *env, *bootstrap.argv]
        )

    spare = stack.config.native()["mogstored4"]
    start_spare, stop_spare = hooks("mogstored4", "mogstored4-usage")[::-1]
    storage = shlex.quote(str(stack.var / "storage"))
    return {
        "node_hooks": hooks("mogstored2"),
        "tracker_hooks": hooks("mogilefsd"),
        **media,
        "device_destroy": f"rm -rf {storage}/{{host}}/docroot/dev{{devid}}/*",
        "new_node_hooks": (
            f"{start_spare} && {bootstrap_command(MOGSTORED4_ADDRESS=spare)}",
            stop_spare,
        ),
        "bootstrap": bootstrap_command(),
    }


@contextlib.contextmanager
def _native_target(var_dir: Path) -> Iterator[Target]:
    from devstack import DevStack, StackConfig, StackError

    trackers = tuple(t.strip() for t in _env("MOGILEFS_TRACKERS").split(",") if t.strip())
    config = StackConfig.isolated(
        var_dir,
        trackers=trackers,
        domain=_env("MOGILEFS_DOMAIN", "avatars") if trackers else "avatars",
        site_workers=2,
        # Notice a stopped or restarted storage node within a second or two.
        tracker_args=("--monitor-interval", "0.5", "--test-write-interval", "1"),
    )
    stack = DevStack(config)
    try:
        stack.start()
        staff = stack.staff_login()
    except StackError as exc:
        stack.stop()
        pytest.fail(f"could not start the native stack in {var_dir}: {exc}", pytrace=False)
    try:
        yield Target(
            stack.site_url,
            stack.trackers,
            stack.domain,
            staff=staff,
            stack=stack,
            app_url=stack.app_url,
            media_tier_url=stack.media_tier_url,
            **_dev_hooks(stack),
        )
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if _env("E2E_SITE_URL"):
        yield _external_target()
        return
    with _native_target(tmp_path_factory.mktemp("e2e-stack")) as t:
        yield t


@pytest.fixture(scope="session")
def mogile(target: Target) -> Iterator[MogileFSClient]:
    # As the site's MOGILEFS_TIMEOUT: a tracker lost mid-request costs 3 s, not 10.
    client = MogileFSClient(target.trackers, target.domain, timeout=3.0)
    yield client
    client.close()


def new_username(prefix: str = "e2e", random_chars: int = 10) -> str:
    return prefix + uuid.uuid4().hex[:random_chars]


@pytest.fixture
def user(target: Target) -> tuple[SiteClient, str]:
    """A freshly signed-up user, logged in: (their client, their username)."""
    client = target.client()
    username = new_username()
    response = client.sign_up(username, PASSWORD)
    assert response.status_code == 302, response.text[:2000]
    return client, username
