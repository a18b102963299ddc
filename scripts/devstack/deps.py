"""The Debian packages the native stack runs, checked before anything starts."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

# package -> the program the stack runs from it (None: a library, checked with dpkg only)
PACKAGES: dict[str, str | None] = {
    "perlbal": "perlbal",  # storage nodes and the front proxy
    "libperlbal-xs-httpheaders-perl": None,  # Perlbal's fast header parser
    "memcached": "memcached",  # the path cache
}


class MissingPackages(RuntimeError):
    """Some packages are not installed; the message names them and the install command."""

    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = list(packages)
        names = " ".join(self.packages)
        super().__init__(
            f"Missing Debian packages: {names}\n"
            f"Install them with: sudo apt-get install {names}   (or, as root: make deps)"
        )


def _installed(package: str) -> bool:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "install ok installed" in out.stdout


def missing(packages: dict[str, str | None] = PACKAGES) -> list[str]:
    """The packages of ``packages`` that are not installed.

    Without dpkg (not Debian), a package counts as installed when its program is on PATH.
    """
    have_dpkg = shutil.which("dpkg-query") is not None
    out = []
    for package, program in packages.items():
        if have_dpkg:
            ok = _installed(package)
        else:
            ok = program is None or shutil.which(program) is not None
        if not ok:
            out.append(package)
    return out


def check(packages: dict[str, str | None] = PACKAGES) -> None:
    """Raise :class:`MissingPackages` naming every missing package at once."""
    if absent := missing(packages):
        raise MissingPackages(absent)
