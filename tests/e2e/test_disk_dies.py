"""A disk dies: its files are copied again from their other copies, and nothing is lost.

The disk's files are destroyed (E2E_DEVICE_DESTROY), the device is marked dead the
documented way (``scripts/clusterctl.py mark-dead``), and then every original must get
its 3 copies back on the remaining devices, on 3 hosts, and still be served with the
same bytes. The device stays dead: bootstrap reports it and does not bring it back.
Thumbnails keep one copy: those whose copy was on the dead disk are gone (the site
serves the others).

This changes the cluster for good (a device id is never reused): run it on a cluster
made for testing. It is skipped when the cluster has too few devices to lose one
(clusterctl refuses: a class would have fewer alive devices than copies).
"""

from __future__ import annotations

import time

import pytest
from waiting import wait_until

from e2e.conftest import REPLICATION_DEADLINE, Target, run_hook
from e2e.flows import devices_of, hosts_of, served, store_avatars

pytestmark = pytest.mark.e2e

USERS = 4


def test_a_dead_disk_loses_no_original(target: Target, mogile) -> None:
    if target.device_destroy is None:
        pytest.skip(
            "set E2E_DEVICE_DESTROY to a command that destroys a device's files "
            "({host} and {devid} are filled in)"
        )
    stored = store_avatars(target, mogile, USERS, seed=700)
    keys = [target.key(s.links.image_url) for s in stored]
    # A device that holds a copy of the first original.
    hosts = {h.hostid: h.name for h in target.admin.get_hosts()}
    devices = {d.devid: d for d in target.admin.get_devices()}
    victim = min(devices_of(target, mogile, keys[0]))
    host = hosts[devices[victim].hostid]
    thumbs = {
        s.links.thumb_url: devices_of(target, mogile, target.key(s.links.thumb_url)) for s in stored
    }

    target.destroy_device(host, victim)
    marked = target.clusterctl("mark-dead", host, str(victim))
    if marked.returncode and "refused" in marked.stderr:
        pytest.skip(f"the cluster cannot lose a device: {marked.stderr.strip()}")
    assert marked.returncode == 0, marked.stderr
    started = time.monotonic()

    def restored() -> bool:
        for key in keys:
            copies = devices_of(target, mogile, key)
            if victim in copies or len(copies) < 3 or len(hosts_of(target, copies)) < 3:
                return False
        return True

    wait_until("every original has 3 copies again", restored, REPLICATION_DEADLINE + 60)
    took = time.monotonic() - started
    print(f"\ndead disk: {len(keys)} originals back to 3 copies in {took:.1f} s")

    for item in stored:
        assert served(target.client(), item.links.image_url).content == item.data
    for url, copies in thumbs.items():
        if victim not in copies:
            assert target.client().get(url).status_code == 200, url

    # The device stays dead, and bootstrap says so rather than reviving it.
    if target.bootstrap:
        out = run_hook(target.bootstrap).stdout
        assert f"device {victim} on {host} is dead" in out, out
    assert {d.devid: d.status for d in target.admin.get_devices()}[victim] == "dead"
