"""What every command handler shares: the error type and the Query.pm helpers."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from .store import Domain

if TYPE_CHECKING:
    from .server import FakeTracker

Args = dict[str, str]


class CommandError(Exception):
    """Raised by a handler to answer ``ERR code [text]``."""

    def __init__(self, code: str, text: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.text = text


class CommandBase:
    """Store access plus check_domain / clear_cache, as in MogileFS::Worker::Query."""

    def __init__(self, tracker: FakeTracker) -> None:
        self.tracker = tracker
        self.store = tracker.store
        self.rng = random.Random()

    def check_domain(self, args: Args) -> Domain:
        """Query.pm check_domain: ``no_domain`` / ``unreg_domain``."""
        name = args.get("domain")
        if not name:
            raise CommandError("no_domain")
        dom = self.store.domain_by_name(name)
        if dom is None:
            raise CommandError("unreg_domain")
        return dom

    def clear_cache(self, result: object = None) -> object:
        """cmd_clear_cache: admin changes wait for a fresh monitor round."""
        if self.tracker.config.admin_delay:
            time.sleep(self.tracker.config.admin_delay)
        self.tracker.monitor.wait_for_round()
        return result


def weighted_list(rng: random.Random, items: list[tuple[object, float]]) -> list:
    """MogileFS::Util::weighted_list: weighted random order; weight 0 drops the item."""
    pool = [(item, weight) for item, weight in items if weight > 0]
    out = []
    while pool:
        total = sum(weight for _, weight in pool)
        pick = rng.random() * total
        for idx, (item, weight) in enumerate(pool):
            pick -= weight
            if pick <= 0 or idx == len(pool) - 1:
                out.append(item)
                del pool[idx]
                break
    return out
