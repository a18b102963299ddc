"""The GitHub workflow: valid, and it drives the cluster through the Makefile."""

from __future__ import annotations

import pytest
import yaml

from . import compose_file as cf

pytestmark = pytest.mark.static

WORKFLOW = cf.ROOT / ".github" / "workflows" / "e2e.yml"


def test_workflow_validates_against_the_github_workflows_schema() -> None:
    result = cf.check_schema("vendor.github-workflows", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_runs_up_e2e_and_always_down() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert "push" in workflow[True]  # YAML 1.1 reads the key `on` as True
    (job,) = workflow["jobs"].values()
    runs = [(step.get("run", "").strip(), step.get("if")) for step in job["steps"]]
    commands = [run for run, _ in runs]
    assert commands.index("make up") < commands.index("make e2e") < commands.index("make down")
    assert ("make down", "always()") in runs
    makefile = (cf.ROOT / "Makefile").read_text()
    for target in ("up", "e2e", "down", "ps"):
        assert f"\n{target}:" in makefile, f"make {target} is missing"
