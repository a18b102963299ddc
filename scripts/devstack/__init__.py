"""The native stack (``make dev``, ``scripts/dev.py``): the compose topology under supervisor."""

from .config import StackConfig, StackError
from .stack import DevStack

__all__ = ["DevStack", "StackConfig", "StackError"]
