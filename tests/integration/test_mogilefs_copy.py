"""``manage.py mogilefs_copy`` between a folder (FileSystemStorage) and MogileFS, both ways."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django_mogilefs.client import MogileFSClient
from django_mogilefs.cluster import ClusterAdmin
from django_mogilefs.exceptions import TrackerUnavailableError
from ownenv import own_environ
from prometheus_client import REGISTRY
from unit.stubs import ScriptedPort, closed_port

pytestmark = pytest.mark.integration

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
NAMES = ["top level.txt", "ünï cödé/ñame é.bin", "a b/c d/e f/deep.txt", "empty/zero.dat"]


def mogilefs(cluster, cls: str) -> dict:
    options = {"trackers": cluster.trackers, "domain": cluster.domain, "mogile_class": cls}
    return {"BACKEND": "django_mogilefs.storage.MogileFSStorage", "OPTIONS": options}


@pytest.fixture
def mog(mogile_cluster, md5_class) -> Iterator[str]:
    """The alias ``mog``: MogileFS, class with hashtype MD5; ``plain``: class thumb."""
    configured = {
        "mog": mogilefs(mogile_cluster, md5_class),
        "plain": mogilefs(mogile_cluster, "thumb"),
    }
    with override_settings(STORAGES={**storages.backends, **configured}, CACHES=LOCMEM):
        yield "mog"


@pytest.fixture
def prefix(mog) -> Iterator[str]:
    p = f"copytest-{uuid.uuid4().hex[:10]}/"
    yield p
    for key in list(storages[mog].client.list_keys(p)):
        storages[mog].delete(key)


def make_tree(root: Path, prefix: str, count: int) -> dict[str, bytes]:
    """``count`` files under ``root/prefix``: nested, spaces, non-ASCII, an empty one."""
    files = {}
    for n in range(count):
        name = NAMES[n] if n < len(NAMES) else f"batch {n % 7}/fïle {n}.bin"
        body = b"" if name.startswith("empty/") else f"{name}\n".encode() * (n % 50 + 1)
        files[prefix + name] = body
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return files


def copy(*args: str) -> str:
    out = io.StringIO()
    call_command("mogilefs_copy", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_hundreds_of_files_into_mogilefs_and_back_out(mog, prefix, tmp_path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    files = make_tree(src, prefix, 300)
    size = sum(map(len, files.values()))

    report = copy(f"dir:{src}", mog)
    assert (
        f"Copied 300 file(s), {size:,} bytes ({size / 1024:.1f} KiB), from dir:{src} to mog"
        in report
    )
    assert "Already there and equal: 0\nFailed: 0\n" in report
    storage = storages[mog]
    assert sorted(storage.client.list_keys(prefix)) == sorted(files)
    for name in NAMES:
        with storage.open(prefix + name) as f:
            assert f.read() == files[prefix + name]
    assert storage.file_info(prefix + NAMES[1]).checksum.startswith("MD5:")

    assert "Copied 0 file(s)" in copy(f"dir:{src}", mog)  # resumable: all there already
    assert "Already there and equal: 300" in copy(f"dir:{src}", mog, "--prefix", prefix)

    report = copy(mog, f"dir:{out}", "--prefix", prefix)
    assert "Copied 300 file(s)" in report and "Failed: 0" in report
    assert tree(out) == files
    assert "Already there and equal: 300" in copy(mog, f"dir:{out}", "--prefix", prefix)


def test_a_different_file_is_never_overwritten(mog, prefix, tmp_path) -> None:
    src = tmp_path / "src"
    files = make_tree(src, prefix, 6)
    same_size = prefix + NAMES[0]
    storages[mog].save(same_size, ContentFile(b"x" * len(files[same_size])))
    storages[mog].save(prefix + NAMES[2], ContentFile(b"shorter"))
    with pytest.raises(CommandError, match=r"2 file\(s\) failed"):
        copy(f"dir:{src}", mog)
    assert storages[mog].open(same_size).read() == b"x" * len(files[same_size])
    assert storages[mog].open(prefix + NAMES[2]).read() == b"shorter"
    assert storages[mog].open(prefix + NAMES[1]).read() == files[prefix + NAMES[1]]


def test_the_failures_are_listed(mog, prefix, tmp_path, capsys) -> None:
    src = tmp_path / "src"
    make_tree(src, prefix, 3)
    storages[mog].save(prefix + NAMES[0], ContentFile(b"other"))
    (src / prefix / "dangling.txt").symlink_to(src / "nowhere")  # unreadable
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("mogilefs_copy", f"dir:{src}", mog, "--no-progress", stdout=out)
    report = out.getvalue()
    assert "Copied 2 file(s)" in report and "Failed: 2\n" in report
    assert (
        f"  {prefix}{NAMES[0]}: differs in the target (size 5, source 14); not overwritten"
        in report
    )
    assert f"  {prefix}dangling.txt: FileNotFoundError" in report


def test_a_dry_run_writes_nothing(mog, prefix, tmp_path) -> None:
    src = tmp_path / "src"
    make_tree(src, prefix, 10)
    storages[mog].save(prefix + NAMES[0], ContentFile((NAMES[0] + "\n").encode()))
    report = copy(f"dir:{src}", mog, "--dry-run")
    assert "Would copy 9 file(s)" in report and "Already there and equal: 1" in report
    assert list(storages[mog].client.list_keys(prefix)) == [prefix + NAMES[0]]


def test_bad_aliases_and_folders_are_clear_errors(mog, tmp_path) -> None:
    with pytest.raises(CommandError, match=r"Unknown storage 'nope': use an alias of STORAGES \("):
        copy("nope", mog)
    with pytest.raises(CommandError, match="no such folder"):
        copy(f"dir:{tmp_path / 'missing'}", mog)
    with pytest.raises(CommandError, match="the same storage"):
        copy(mog, mog)


def test_a_source_cut_short_never_reaches_the_target(mog, prefix, tmp_path, monkeypatch) -> None:
    src = tmp_path / "src"
    files = make_tree(src, prefix, 4)
    broken = prefix + NAMES[2]
    real_open = FileSystemStorage._open

    def short_open(self, name, mode="rb"):
        f = real_open(self, name, mode)
        if name == broken:
            f.file = io.BytesIO(files[name][:5])
        return f

    monkeypatch.setattr(FileSystemStorage, "_open", short_open)
    with pytest.raises(CommandError):
        copy(f"dir:{src}", mog)
    assert not storages[mog].exists(broken)
    assert len(list(storages[mog].client.list_keys(prefix))) == 3


def test_an_interrupted_write_leaves_no_half_file_and_the_next_run_resumes(
    mog, prefix, tmp_path, monkeypatch
) -> None:
    """Out of MogileFS into a folder, interrupted while the fourth file is being written."""
    src, out = tmp_path / "src", tmp_path / "out"
    files = make_tree(src, prefix, 5)
    copy(f"dir:{src}", mog)
    victim = prefix + NAMES[0]  # the fourth key in the tracker's (byte) order
    real_save = FileSystemStorage._save

    def interrupted_save(self, name, content):
        if name != victim:
            return real_save(self, name, content)
        first = next(content.chunks(chunk_size=4))

        class Half(ContentFile):
            def chunks(self, chunk_size=None):
                yield first
                raise KeyboardInterrupt

        return real_save(self, name, Half(first, name=name))

    monkeypatch.setattr(FileSystemStorage, "_save", interrupted_save)
    with pytest.raises(SystemExit) as exit_info:
        copy(mog, f"dir:{out}", "--prefix", prefix)
    assert exit_info.value.code == 130
    assert sorted(tree(out)) == sorted(files)[:3] and victim not in tree(out)
    monkeypatch.setattr(FileSystemStorage, "_save", real_save)
    report = copy(mog, f"dir:{out}", "--prefix", prefix)
    assert "Copied 2 file(s)" in report and "Already there and equal: 3" in report
    assert tree(out) == files


def test_a_tracker_gone_mid_way_stops_the_run_and_loses_nothing(
    mog, prefix, tmp_path, monkeypatch
) -> None:
    src = tmp_path / "src"
    files = make_tree(src, prefix, 8)
    client = storages[mog].client
    real_store, stored = client.store, []

    def store(key, content, *, cls=None):
        if len(stored) == 4:
            raise TrackerUnavailableError("No MogileFS tracker answered 'create_open' (test)")
        stored.append(key)
        return real_store(key, content, cls=cls)

    monkeypatch.setattr(client, "store", store)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "mogilefs_copy", f"dir:{src}", mog, "--no-progress", stdout=io.StringIO(), stderr=err
        )
    assert exit_info.value.code == 2
    assert "Stopped: No MogileFS tracker answered" in err.getvalue()
    assert "Run the command again to resume" in err.getvalue()
    assert sorted(client.list_keys(prefix)) == sorted(stored)
    monkeypatch.setattr(client, "store", real_store)
    assert "Copied 4 file(s)" in copy(f"dir:{src}", mog)
    assert sorted(client.list_keys(prefix)) == sorted(files)


def test_an_unreachable_tracker_is_a_clear_error(tmp_path, mog) -> None:
    dead = {
        "BACKEND": "django_mogilefs.storage.MogileFSStorage",
        "OPTIONS": {"trackers": [closed_port()], "domain": "d"},
    }
    with (
        override_settings(STORAGES={**storages.backends, "dead": dead}),
        pytest.raises(CommandError, match="Cannot list dead: No MogileFS tracker answered"),
    ):
        copy("dead", f"dir:{tmp_path}")
    assert os.listdir(tmp_path) == []


# -- tracker round trips -------------------------------------------------------------


class TrackerCalls:
    """The tracker round trips this process makes inside the block, by command.

    Read from the client's own counter (``mogilefs_tracker_request_seconds``), so every
    pool and storage in the process is counted, and nothing the tracker does by itself.
    """

    def __enter__(self) -> TrackerCalls:
        self.before = self._counts()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._counts()
        made = {c: int(n - self.before.get(c, 0)) for c, n in after.items()}
        self.made = {c: n for c, n in made.items() if n}
        # The classes' hashtypes, asked by a storage's first store and kept a minute.
        assert self.made.pop("get_domains", 0) <= 1

    @staticmethod
    def _counts() -> dict[str, float]:
        return {
            sample.labels["command"]: sample.value
            for metric in REGISTRY.collect()
            if metric.name == "mogilefs_tracker_request_seconds"
            for sample in metric.samples
            if sample.name.endswith("_count")
        }


def pages(keys: int) -> int:
    """``list_keys`` calls to list ``keys`` keys: 1000 a page, then the empty answer at the end."""
    return -(-keys // 1000) + 1


def test_one_file_info_per_file_besides_the_transfer(mog, prefix, tmp_path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    n = len(make_tree(src, prefix, 60))

    with TrackerCalls() as into:
        copy(f"dir:{src}", mog)
    with TrackerCalls() as again:
        assert f"Already there and equal: {n}" in copy(f"dir:{src}", mog)
    with TrackerCalls() as out_of:
        assert f"Copied {n} file(s)" in copy(mog, f"dir:{out}", "--prefix", prefix)
    with TrackerCalls() as out_again:
        assert f"Already there and equal: {n}" in copy(mog, f"dir:{out}", "--prefix", prefix)

    assert into.made == {"file_info": n, "create_open": n, "create_close": n}
    assert again.made == {"file_info": n}  # the class keeps MD5s: nothing is read back
    assert out_of.made == {"list_keys": pages(n), "file_info": n, "get_paths": n}
    assert out_again.made == {"list_keys": pages(n), "file_info": n}


# -- classes -------------------------------------------------------------------------


def test_each_alias_copies_its_own_class_and_a_round_trip_keeps_every_class(
    mog, md5_class, prefix, tmp_path
) -> None:
    originals = {f"{prefix}avatars/{n}.png": f"original {n}".encode() for n in range(4)}
    thumbs = {f"{prefix}thumbs/{n}.png": f"thumb {n}".encode() for n in range(3)}
    for alias, files in ((mog, originals), ("plain", thumbs)):
        for name, body in files.items():
            storages[alias].save(name, ContentFile(body))
    a, t = tmp_path / "avatars", tmp_path / "thumbs"

    report = copy("plain", f"dir:{t}", "--prefix", prefix)
    assert "Copied 3 file(s)" in report and "In another class (another storage's): 4" in report
    assert tree(t) == thumbs
    report = copy(mog, f"dir:{a}", "--prefix", prefix)
    assert "Copied 4 file(s)" in report and "In another class (another storage's): 3" in report
    assert tree(a) == originals

    for name in [*originals, *thumbs]:
        storages[mog].delete(name)
    assert "Copied 4 file(s)" in copy(f"dir:{a}", mog)
    assert "Copied 3 file(s)" in copy(f"dir:{t}", "plain")
    classes = {name: storages[mog].file_info(name).cls for name in [*originals, *thumbs]}
    assert classes == {**dict.fromkeys(originals, md5_class), **dict.fromkeys(thumbs, "thumb")}
    for name, body in {**originals, **thumbs}.items():
        assert storages[mog].open(name).read() == body


def test_a_key_the_domain_keeps_in_another_class_is_left_alone(mog, prefix, tmp_path) -> None:
    """A folder of thumbnails restored into the originals' alias by mistake."""
    name = prefix + "thumbs/1.png"
    storages["plain"].save(name, ContentFile(b"thumb"))
    (tmp_path / prefix / "thumbs").mkdir(parents=True)
    (tmp_path / name).write_bytes(b"thumb")
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 file\(s\) failed"):
        call_command("mogilefs_copy", f"dir:{tmp_path}", mog, "--no-progress", stdout=out)
    assert (
        f"  {name}: in the target in class thumb, not avatar (another storage's file); "
        "not changed" in out.getvalue()
    )
    assert storages[mog].file_info(name).cls == "thumb"


# -- the command line, as the README prints it -----------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def readme_copy_commands() -> list[str]:
    """The ``$`` lines of the README's mogilefs_copy section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Moving media in and out") :]
    section = section[: section.index("\n## ")]
    return [line[2:] for line in section.splitlines() if line.startswith("$ ")]


@pytest.fixture
def fresh_domain(mogile_cluster) -> Iterator[str]:
    """A domain of its own with the site's classes (avatar with MD5, thumb), removed after."""
    domain = f"copy-{uuid.uuid4().hex[:10]}"
    admin = ClusterAdmin(mogile_cluster.trackers)
    admin.create_domain(domain)
    admin.create_class(domain, "avatar", 3, hashtype="MD5")
    admin.create_class(domain, "thumb", 1)
    client = MogileFSClient(mogile_cluster.trackers, domain)
    yield domain
    for key in list(client.list_keys()):
        client.delete(key)
    for cls in ("avatar", "thumb"):
        admin.pool.request("delete_class", {"domain": domain, "class": cls})
    admin.pool.request("delete_domain", {"domain": domain})
    client.close()
    admin.close()


def run_manage(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=own_environ(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_readme_commands_run_as_printed(mogile_cluster, fresh_domain, tmp_path) -> None:
    """From a checkout's root, with the .venv, against make dev's trackers (here: ours)."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "app").symlink_to(ROOT / "app")
    client = MogileFSClient(mogile_cluster.trackers, fresh_domain)
    for n in range(3):
        client.store(f"avatars/{n}/a.png", f"original {n}".encode(), cls="avatar")
        client.store(f"thumbs/{n}/a.png", f"thumb {n}".encode(), cls="thumb")
    commands = readme_copy_commands()
    assert len(commands) >= 3, commands
    cluster = {"MOGILEFS_TRACKERS": ",".join(mogile_cluster.trackers)}
    for command in commands:
        ran = run_manage(command, tmp_path, MOGILEFS_DOMAIN=fresh_domain, **cluster)
        assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
        assert "Failed: 0" in ran.stdout, (command, ran.stdout)
    exported = tree(tmp_path / "var" / "export")
    assert sorted(exported) == sorted(
        f"{alias}/{alias}/{n}/a.png" for alias in ("avatars", "thumbs") for n in range(3)
    )
    client.close()


def test_a_missing_setting_is_one_line(tmp_path) -> None:
    ran = run_manage(f"{sys.executable} app/manage.py mogilefs_copy avatars dir:{tmp_path}", ROOT)
    assert ran.returncode == 1
    assert ran.stderr.startswith("manage.py: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG")
    assert ran.stderr.count("\n") == 1, ran.stderr


def test_ctrl_c_that_a_command_lets_out_is_one_line_and_status_130() -> None:
    code = "import time; print('ready', flush=True); time.sleep(60)"
    command = [sys.executable, "app/manage.py", "shell", "--no-imports", "-c", code]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=own_environ(DJANGO_DEBUG="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, stderr) == (130, "Interrupted.\n")


def test_ctrl_c_while_listing_is_one_line_and_status_130(tmp_path) -> None:
    connected = threading.Event()

    def hold(conn) -> None:  # a tracker that takes the request and never answers
        connected.set()
        conn.recv(4096)
        time.sleep(30)

    tracker = ScriptedPort(hold)
    command = [sys.executable, "app/manage.py", "mogilefs_copy", "avatars", f"dir:{tmp_path}"]
    env = own_environ(DJANGO_DEBUG="1", MOGILEFS_TRACKERS=tracker.address, MOGILEFS_TIMEOUT="60")
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert connected.wait(30), "the command never asked the tracker"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        tracker.close()
    assert proc.returncode == 130
    assert stderr == "Interrupted before anything was copied.\n"
    assert stdout == ""
