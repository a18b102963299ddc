"""Replication policies: MultipleHosts and MultipleDevices ->replicate_to, as in 2.73."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from .base import weighted_list
from .observe import DeviceView


@dataclass
class Request:
    """MogileFS::ReplicationRequest: happy, too happy, no answer, or where to copy."""

    happy: bool = False
    too_happy: bool = False
    ideal: list[DeviceView] = field(default_factory=list)
    desperate: list[DeviceView] = field(default_factory=list)

    @property
    def no_answer(self) -> bool:
        return not (self.happy or self.ideal or self.desperate)


ALL_GOOD = Request(happy=True)
TOO_GOOD = Request(happy=True, too_happy=True)
TEMP_NO_ANSWER = Request()


def parse_policy(policy: str, mindevcount: int) -> tuple[str, int]:
    """``MultipleHosts(3)`` -> ("MultipleHosts", 3); an empty count means the class's."""
    name, _, rest = policy.partition("(")
    explicit = rest.rstrip(") ").strip()
    return name.strip(), int(explicit) if explicit.isdigit() and int(explicit) else mindevcount


def replicate_to(
    policy: str,
    mindevcount: int,
    on_devs: Collection[DeviceView],
    all_devs: Mapping[int, DeviceView],
    failed: Collection[int],
    rng: random.Random,
) -> Request:
    name, need = parse_policy(policy, mindevcount)
    if name == "MultipleDevices":
        return _multiple_devices(need, on_devs, all_devs, failed, rng)
    return _multiple_hosts(need, on_devs, all_devs, failed, rng)


def _candidates(
    on_devs: Collection[DeviceView], all_devs: Mapping[int, DeviceView], failed: Collection[int]
) -> list[DeviceView]:
    on = {d.devid for d in on_devs}
    return sorted(
        (
            d
            for d in all_devs.values()
            if d.devid not in on and d.devid not in failed and d.should_get_new_files
        ),
        key=lambda d: d.percent_free,
        reverse=True,
    )


def _weighted(rng: random.Random, devs: list[DeviceView]) -> list[DeviceView]:
    return weighted_list(rng, [(d, 100 * d.percent_free) for d in devs[:20]])


def _multiple_hosts(
    need: int,
    on_devs: Collection[DeviceView],
    all_devs: Mapping[int, DeviceView],
    failed: Collection[int],
    rng: random.Random,
) -> Request:
    already_on = len(on_devs)
    if need == 1 and already_on == 1:
        return ALL_GOOD
    total_disks = sum(d.should_have_files for d in all_devs.values())
    on_host = {d.hostid for d in on_devs}
    uniq_hosts_on = len(on_host)
    total_uniq_hosts = len({d.hostid for d in all_devs.values() if d.status == "alive"})
    if uniq_hosts_on > need or already_on > need:
        return TOO_GOOD
    if uniq_hosts_on == need:
        return ALL_GOOD
    if uniq_hosts_on >= total_uniq_hosts and already_on >= need:
        return ALL_GOOD
    if already_on >= 2 and already_on == total_disks:
        return ALL_GOOD
    skip_host = on_host if uniq_hosts_on < total_uniq_hosts else set()
    dests = _candidates(on_devs, all_devs, failed)
    if not dests:
        return TEMP_NO_ANSWER
    ideal = [d for d in dests if d.hostid not in skip_host]
    desperate = [d for d in dests if d.hostid in skip_host]
    if already_on >= need and not ideal:
        return TEMP_NO_ANSWER
    return Request(ideal=_weighted(rng, ideal), desperate=_weighted(rng, desperate))


def _multiple_devices(
    need: int,
    on_devs: Collection[DeviceView],
    all_devs: Mapping[int, DeviceView],
    failed: Collection[int],
    rng: random.Random,
) -> Request:
    already_on = len(on_devs)
    if already_on == need:
        return ALL_GOOD
    if already_on > need:
        return TOO_GOOD
    total_disks = sum(d.should_have_files for d in all_devs.values())
    if already_on >= 2 and already_on == total_disks:
        return ALL_GOOD
    dests = _candidates(on_devs, all_devs, failed)
    if not dests:
        return TEMP_NO_ANSWER
    return Request(ideal=_weighted(rng, dests))
