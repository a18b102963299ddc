"""The pytest plugin's fixtures exist exactly where django-mogilefs[testing] is installed."""

from __future__ import annotations

from importlib import metadata

import pytest
from django_mogilefs.testing import pytest_plugin

pytest_plugins = ["pytester"]


def test_the_extra_s_requirements_are_read_from_the_installed_metadata() -> None:
    testing = [r for r in metadata.requires("django-mogilefs") or [] if "testing" in r]
    assert testing, "the distribution declares no testing extra"
    assert pytest_plugin.missing_requirements() == []  # this environment installs it


def test_a_missing_requirement_of_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real_version = metadata.version

    def version(name: str) -> str:
        if name.lower() == "pymysql":
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(pytest_plugin.metadata, "version", version)
    assert pytest_plugin.missing_requirements() == ["PyMySQL"]
    # Another extra's requirements are not the testing extra's.
    assert pytest_plugin.missing_requirements(extra="metrics") == []


@pytest.mark.parametrize("installed", [True, False])
def test_the_fixtures_exist_only_with_the_extra(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, installed: bool
) -> None:
    if not installed:
        monkeypatch.setattr(pytest_plugin, "missing_requirements", lambda: ["PyMySQL"])
    pytester.makepyfile(
        """
        def test_domain(request):
            assert request.getfixturevalue("mogilefs_domain") == "testdom"
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:django")
    if installed:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*fixture 'mogilefs_domain' not found*"])
