"""The native stack (``make dev``): the compose topology as local processes.

``python scripts/dev.py up|down|status``; from Python, :class:`DevStack` is a
context manager (the end-to-end suite and the bench start one on free ports).
"""

from .config import StackConfig
from .deps import MissingPackages
from .stack import DevStack, StackError

__all__ = ["DevStack", "MissingPackages", "StackConfig", "StackError"]
