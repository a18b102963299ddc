"""Domain and classes only, for an existing cluster (``MOGILEFS_TRACKERS`` set).

bootstrap.py has no switch to leave hosts and devices alone, and somebody else's
cluster has its own. This reuses its planner on the description with the hosts
taken out, and applies only the domain and class changes, through bootstrap's own
``apply_change`` (which copes with changes another process made first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO


class NamespaceError(RuntimeError):
    """The domain or a class could not be ensured."""


def ensure(
    trackers: Sequence[str], description: Path, environ: Mapping[str, str], out: TextIO
) -> None:
    import bootstrap
    from cluster_description import DescriptionError, load
    from django_mogilefs.cluster import ClusterAdmin
    from django_mogilefs.exceptions import MogileFSError

    try:
        desc = replace(load(description, environ), hosts=())
    except DescriptionError as exc:
        raise NamespaceError(f"bad cluster description {exc}") from None
    admin = ClusterAdmin(list(trackers))
    try:
        plan = bootstrap.make_plan(desc, admin.get_domains(), [], [])
        for change in plan.changes:
            outcome = bootstrap.apply_change(admin, change)
            print(f"devstack: {outcome}: {change.summary}", file=out, flush=True)
        if not plan.changes:
            print(f"devstack: domain {desc.domain} and its classes exist", file=out)
    except MogileFSError as exc:
        raise NamespaceError(f"tracker {','.join(trackers)}: {exc}") from None
    finally:
        admin.close()
