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
    st = os.statvfs(tmp_path)
    assert int(fields["total"]) == st.f_blocks * st.f_frsize // 1024
    assert 0 < int(fields["used"]) < int(fields["total"])
    assert int(fields["available"]) <= int(fields["total"]) - int(fields["used"])
    assert fields["disk"] == str(tmp_path)
    assert re.fullmatch(r"\d{1,3}%", fields["use"])
    assert text.endswith("\n")


def test_write_usage_needs_the_device_directory(tmp_path: Path) -> None:
    write_usage(tmp_path, 1)
    assert not (tmp_path / "dev1").exists()  # like mogstored, never creates devN
    (tmp_path / "dev1").mkdir()
    write_usage(tmp_path, 1)
    assert parse((tmp_path / "dev1" / "usage").read_text())["disk"] == str(tmp_path / "dev1")
    assert sorted(p.name for p in (tmp_path / "dev1").iterdir()) == ["usage"]
