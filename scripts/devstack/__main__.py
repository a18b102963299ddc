"""``python scripts/devstack up|down|status``, or ``python -m devstack`` (scripts/ on the path)."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a directory: put scripts/ and app/ on the path and import the package properly.
    root = Path(__file__).resolve().parents[2]
    sys.path[:0] = [str(root / "scripts"), str(root / "app")]
    from devstack.cli import main
else:
    from .cli import main

sys.exit(main())
