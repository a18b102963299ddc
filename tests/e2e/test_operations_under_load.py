"""Operations under load: a tracker's machine drained, a rolling update; 0 failed requests.

While one thread keeps reading originals through Perlbal and another keeps signing up
users and uploading, an operation runs (a hook command, for a stack the suite did not
start: the swarm rehearsal sets them):

* ``E2E_TRACKER_DRAIN`` / ``E2E_TRACKER_UNDRAIN``: drain the machine of a tracker (it
  moves to another machine) and make it active again;
* ``E2E_ROLLING_UPDATE``: replace the tasks of app, media and Perlbal one at a time
  (``docker service update --force``), returning once done.

Every request of both loads must succeed. Originals only: they have three copies, so
a storage node that goes away with its machine costs Perlbal a retry, not an answer.
"""

from __future__ import annotations

import time

import pytest
from django_mogilefs.tracker import parse_trackers, resolve_all
from waiting import wait_until

from e2e import images
from e2e.conftest import PASSWORD, Target, new_username, run_hook
from e2e.flows import Load, loads_running, store_avatars, upload

pytestmark = pytest.mark.e2e

STEPS = 3  # each load completes this many steps after the operation too
DEADLINE = 600.0


def loads(target: Target, mogile) -> list[Load]:
    stored = store_avatars(target, mogile, 3, seed=1000)

    def read(i: int) -> None:
        item = stored[i % len(stored)]
        response = item.client.get(item.links.image_url)
        assert response.status_code == 200 and response.content == item.data, response.status_code

    def write(i: int) -> None:
        client, name = target.client(), new_username()
        assert client.sign_up(name, PASSWORD).status_code == 302
        picture = images.picture(48, 48, "PNG", seed=1100 + i)
        links = upload(client, name, picture, "up.png", "image/png")
        response = client.get(links.image_url)
        assert response.status_code == 200 and response.content == picture, response.status_code

    return [Load("read", read), Load("upload", write)]


def under_load(target: Target, mogile, operation) -> list[Load]:
    """Run ``operation()`` while both loads run; both go on for STEPS more steps after."""
    with loads_running(loads(target, mogile)) as running:
        time.sleep(2)
        started = time.monotonic()
        operation()
        print(f"\noperation done in {time.monotonic() - started:.1f} s; {running}")
        since = [load.done for load in running]
        wait_until(
            "reads and uploads go on after it",
            lambda: (
                all(load.done - n >= STEPS for load, n in zip(running, since, strict=True))
                or any(load.failures for load in running)
            ),
            DEADLINE,
        )
    return running


def tracker_addresses(target: Target) -> set[str]:
    """The trackers' addresses now (a name may stand for several: tasks.mogilefsd)."""
    out = set()
    for host, port in parse_trackers(target.trackers):
        out |= {f"{a}:{p}" for a, p in resolve_all(host, port, 5)}
    return out


def test_no_request_fails_while_a_trackers_machine_is_drained(target: Target, mogile) -> None:
    if target.tracker_drain_hooks is None:
        pytest.skip("set E2E_TRACKER_DRAIN and E2E_TRACKER_UNDRAIN (a swarm stack's commands)")
    before = tracker_addresses(target)

    def drain() -> None:
        run_hook(target.tracker_drain_hooks[0])
        wait_until(
            "a tracker answers from a new address",
            lambda: (
                len(tracker_addresses(target) - before) >= 1
                and len(tracker_addresses(target)) >= len(before)
            ),
            DEADLINE,
            interval=1,
        )

    try:
        under_load(target, mogile, drain)
    finally:
        run_hook(target.tracker_drain_hooks[1])


def test_no_request_fails_during_a_rolling_update(target: Target, mogile) -> None:
    if target.rolling_update is None:
        pytest.skip("set E2E_ROLLING_UPDATE (a swarm stack's command)")
    under_load(target, mogile, lambda: run_hook(target.rolling_update, timeout=DEADLINE))
