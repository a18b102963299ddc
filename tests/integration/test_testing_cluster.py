"""django_mogilefs.testing for other projects: the context manager and the pytest plugin.

The plugin runs in a throwaway project outside the repository, in a pytest of its own,
with Perlbal hidden from PATH: the cluster must fall back to the Python storage nodes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils import timezone
from django_mogilefs.storage import MogileFSStorage
from django_mogilefs.testing import ClusterError, PythonStorageNode, mogilefs_cluster

pytestmark = pytest.mark.integration

CONFTEST = """
import django
from django.conf import settings

settings.configure(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
django.setup()
"""

TEST_FILE = """
from django.core.files.base import ContentFile
from django_mogilefs.storage import MogileFSStorage


def test_save_read_delete(mogilefs_cluster):
    assert {type(n).__name__ for n in mogilefs_cluster.nodes} == {"PythonStorageNode"}
    storage = MogileFSStorage(
        trackers=mogilefs_cluster.trackers, domain=mogilefs_cluster.domain, mogile_class="photo"
    )
    name = storage.save("plugin/hello.txt", ContentFile(b"hello, mogilefs"))
    with storage.open(name) as f:
        assert f.read() == b"hello, mogilefs"
    storage.delete(name)
    assert not storage.exists(name)
"""

OVERRIDES = """
import pytest


@pytest.fixture(scope="session")
def mogilefs_classes():
    return {"photo": 2}
"""


def path_without_perlbal() -> str:
    """PATH with every directory holding ``perlbal`` left out (python stays reachable)."""
    keep = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "perlbal").exists()]
    assert shutil.which("perlbal", path=os.pathsep.join(keep)) is None
    return os.pathsep.join(keep)


def test_the_plugin_gives_a_cluster_a_django_storage_can_use(tmp_path: Path) -> None:
    project = tmp_path / "someone-elses-project"
    project.mkdir()
    (project / "conftest.py").write_text(textwrap.dedent(CONFTEST) + OVERRIDES)
    (project / "test_files.py").write_text(textwrap.dedent(TEST_FILE))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MOGILEFS_", "PYTEST"))
    }
    env["PATH"] = path_without_perlbal()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_context_manager_makes_the_classes_asked_for_and_cleans_up() -> None:
    with mogilefs_cluster(domain="photos", classes={"photo": 2}, nodes="python") as cluster:
        assert all(isinstance(node, PythonStorageNode) for node in cluster.nodes)
        reply = cluster.call("get_domains")
        args = reply.args
        n = next(i for i in range(1, int(args["domains"]) + 1) if args[f"domain{i}"] == "photos")
        classes = {
            args[f"domain{n}class{c}name"]: int(args[f"domain{n}class{c}mindevcount"])
            for c in range(1, int(args[f"domain{n}classes"]) + 1)
        }
        assert classes == {"default": 2, "photo": 2}
        host, port = cluster.trackers[0].rsplit(":", 1)
        docroot = cluster.nodes[0].docroot
        assert docroot.is_dir()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2).close()
    assert not docroot.exists()  # the temporary directory is gone


def test_the_storage_reads_a_file_s_time_from_the_python_nodes() -> None:
    # get_modified_time works on a real mogstored (its Last-Modified), so on these too.
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with mogilefs_cluster(nodes="python") as cluster, override_settings(CACHES=locmem):
        storage = MogileFSStorage(
            trackers=cluster.trackers, domain=cluster.domain, mogile_class="thumb"
        )
        before = timezone.now() - timedelta(seconds=5)
        name = storage.save("times/t.txt", ContentFile(b"time"))
        assert before <= storage.get_modified_time(name) <= timezone.now() + timedelta(seconds=5)


def test_an_unknown_node_kind_is_refused_before_anything_starts() -> None:
    with (
        pytest.raises(ClusterError, match="expected 'auto', 'perlbal' or 'python'"),
        mogilefs_cluster(nodes="nginx"),  # type: ignore[arg-type]
    ):
        pass


def test_the_environment_chooses_the_node_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOGILEFS_TESTING_NODES", "python")
    with mogilefs_cluster() as cluster:
        assert {type(n) for n in cluster.nodes} == {PythonStorageNode}
        assert {d.observed_state for d in cluster.devices()} == {"writeable"}
