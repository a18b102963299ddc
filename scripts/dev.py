#!/usr/bin/env python3
"""``make dev``'s command (``--help``); run it with the Python of ``make deps`` (.venv)."""

import sys

from devstack.cli import main

sys.exit(main())
