"""make dev logs staff in with the password compose uses: $SECRETS_DIR/staff_password."""

from __future__ import annotations

from pathlib import Path

import pytest
from devstack.cli import staff_password
from devstack.config import ROOT
from devstack.stack import StackError

pytestmark = pytest.mark.unit


def test_the_default_is_compose_s_dev_secret():
    expected = (ROOT / "secrets" / "dev" / "staff_password").read_text().strip()
    assert expected
    assert staff_password({}) == expected


def test_secrets_dir_is_honoured(tmp_path: Path):
    (tmp_path / "staff_password").write_text("a long staff password 42\n")
    assert staff_password({"SECRETS_DIR": str(tmp_path)}) == "a long staff password 42"


def test_a_missing_or_empty_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(
        StackError, match=r"staff_password \(No such file or directory\).*SECRETS_DIR"
    ):
        staff_password({"SECRETS_DIR": str(tmp_path)})
    (tmp_path / "staff_password").write_text("\n")
    with pytest.raises(StackError, match="is empty"):
        staff_password({"SECRETS_DIR": str(tmp_path)})
