"""The pytest plugin (entry point ``pytest11``): a fake MogileFS cluster as a fixture.

    def test_roundtrip(mogilefs_cluster):
        storage = MogileFSStorage(trackers=mogilefs_cluster.trackers,
                                  domain=mogilefs_cluster.domain)

Its fixtures exist only where ``django-mogilefs[testing]`` is installed: the entry
point comes with every install of the package, so without the extra the plugin adds
nothing and imports nothing. One cluster per test session (three storage nodes and a
fake 2.73 tracker, see :mod:`django_mogilefs.testing.cluster`); files stay between
tests, so give each test its own names. Override the session fixtures
``mogilefs_domain`` or ``mogilefs_classes`` (name -> copies) in a ``conftest.py`` to
change what is created.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .cluster import MogileCluster

DISTRIBUTION = "django-mogilefs"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def missing_requirements(distribution: str = DISTRIBUTION, extra: str = "testing") -> list[str]:
    """The distributions ``extra`` asks for that are not installed ([] when all are)."""
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    missing = []
    for requirement in metadata.requires(distribution) or []:
        if ";" not in requirement or not marker.search(requirement.split(";", 1)[1]):
            continue
        name = _NAME.match(requirement.strip())
        if name is None:
            continue
        try:
            metadata.version(name.group(0))
        except metadata.PackageNotFoundError:
            missing.append(name.group(0))
    return missing


class Fixtures:
    """The plugin's fixtures, registered by :func:`pytest_configure`."""

    @pytest.fixture(scope="session")
    def mogilefs_domain(self) -> str:
        """The domain the cluster is created with."""
        return "testdom"

    @pytest.fixture(scope="session")
    def mogilefs_classes(self) -> Mapping[str, int]:
        """The domain's classes, name -> mindevcount (copies)."""
        from .cluster import CLASSES

        return dict(CLASSES)

    @pytest.fixture(scope="session")
    def mogilefs_cluster(
        self,
        mogilefs_domain: str,
        mogilefs_classes: Mapping[str, int],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[MogileCluster]:
        """A running fake cluster with ``trackers`` (``"host:port"``) and ``domain``."""
        from .cluster import mogilefs_cluster as start_cluster

        with start_cluster(
            domain=mogilefs_domain,
            classes=mogilefs_classes,
            root=tmp_path_factory.mktemp("mogilefs"),
        ) as cluster:
            yield cluster


def pytest_configure(config: pytest.Config) -> None:
    try:
        missing = missing_requirements()
    except metadata.PackageNotFoundError:  # imported from a checkout, not installed
        missing = []
    if not missing:
        config.pluginmanager.register(Fixtures(), "django_mogilefs.testing.fixtures")
