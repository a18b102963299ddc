"""Optional dependencies, imported when first needed (as django-storages does).

``prometheus-client`` is the ``metrics`` extra (``/metrics``, the counters) and
``tqdm`` the ``progress`` extra (``mogilefs_copy``'s progress bar):
``pip install django-mogilefs[metrics,progress]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from django.core.exceptions import ImproperlyConfigured


def require(
    module: str, *, extra: str, error: type[Exception] = ImproperlyConfigured
) -> ModuleType:
    """``module``, imported; ``error`` naming the extra to install if it is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or module.split(".")[0] != exc.name.split(".")[0]:
            raise  # something else is missing: not ours to explain
        raise error(
            f"{module.split('.')[0]} is not installed: pip install 'django-mogilefs[{extra}]'"
        ) from exc
