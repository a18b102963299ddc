"""``manage.py mogilefs_copy`` between a folder (FileSystemStorage) and MogileFS, both ways."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django_mogilefs.exceptions import TrackerUnavailableError
from unit.stubs import closed_port

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
    assert f"Copied 300 file(s), {size:,} bytes, from dir:{src} to mog" in report
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
