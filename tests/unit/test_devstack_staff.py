"""make dev logs staff in with compose's account: staff, password $SECRETS_DIR/staff_password."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_yaml import ROOT
from devstack import DevStack, StackConfig

pytestmark = pytest.mark.unit


def login(tmp_path: Path) -> tuple[str, str]:
    return DevStack(StackConfig(var_dir=tmp_path / "var")).staff_login()


def test_the_default_is_compose_s_dev_secret(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    expected = (ROOT / "secrets" / "dev" / "staff_password").read_text().strip()
    assert expected
    assert login(tmp_path) == ("staff", expected)


def test_secrets_dir_is_honoured(tmp_path: Path, monkeypatch):
    (tmp_path / "staff_password").write_text("a long staff password 42\n")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    assert login(tmp_path) == ("staff", "a long staff password 42")
