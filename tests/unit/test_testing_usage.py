"""The storage nodes' usage file, as mogstored's [diskusage] child writes it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django_mogilefs.testing.usage import usage_text, write_usage

pytestmark = pytest.mark.unit


def parse(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines())


def test_usage_text_has_mogstored_fields_in_kb(tmp_path: Path) -> None:
    text = usage_text(tmp_path)
    fields = parse(text)
    assert list(fields) == ["available", "device", "disk", "time", "total", "use", "used"]
    # mogstored's total is used + available: blocks reserved for root are not counted.
    assert int(fields["total"]) == int(fields["used"]) + int(fields["available"])
    assert 0 < int(fields["used"]) < int(fields["total"])
    assert fields["disk"] == str(tmp_path)
    assert re.fullmatch(r"\d{1,3}%", fields["use"])
    assert text.endswith("\n")


@pytest.mark.parametrize(
    ("frsize", "blocks", "free", "avail", "expected"),
    [
        # 4 KiB blocks, 50 of the 350 free ones reserved for root
        (
            4096,
            1000,
            350,
            300,
            {"used": "2600", "available": "1200", "total": "3800", "use": "69%"},
        ),
        # df -k rounds half kilobytes up; use% is from the block counts, rounded up
        (512, 1001, 300, 251, {"used": "351", "available": "126", "total": "477", "use": "74%"}),
    ],
)
def test_usage_numbers_are_the_ones_mogstored_computes_from_df(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    frsize: int,
    blocks: int,
    free: int,
    avail: int,
    expected: dict[str, str],
) -> None:
    # DiskUsage.pm takes df -P -l -k's Used and Available, writes total = used + available
    # and df's Capacity as use.
    st = os.statvfs_result((frsize, frsize, blocks, free, avail, 0, 0, 0, 0, 255))
    monkeypatch.setattr(os, "statvfs", lambda path: st)
    fields = parse(usage_text(tmp_path))
    assert {k: fields[k] for k in expected} == expected


def test_write_usage_needs_the_device_directory(tmp_path: Path) -> None:
    write_usage(tmp_path, 1)
    assert not (tmp_path / "dev1").exists()  # like mogstored, never creates devN
    (tmp_path / "dev1").mkdir()
    write_usage(tmp_path, 1)
    assert parse((tmp_path / "dev1" / "usage").read_text())["disk"] == str(tmp_path / "dev1")
    assert sorted(p.name for p in (tmp_path / "dev1").iterdir()) == ["usage"]
