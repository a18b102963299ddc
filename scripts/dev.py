#!/usr/bin/env python3
"""``python scripts/dev.py up|down|status``: the native stack of ``make dev``.

Run from the environment ``make deps`` creates (``.venv/bin/python``), where
django-mogilefs is installed; the ``devstack`` package beside this file does the work.
"""

import sys

from devstack.cli import main

sys.exit(main())
