"""Losing one of two trackers fails no request: the site and its clients fail over.

While one thread keeps reading avatars through Perlbal (and asking the trackers for
their paths) and another keeps signing up users and uploading, the first tracker is
stopped until both loads have made progress without it, and started again. Every
request must succeed, including the uploads whose tracker answer was lost when it
stopped.
"""

from __future__ import annotations

import time

import pytest
from waiting import wait_until

from e2e import images
from e2e.conftest import PASSWORD, Target, new_username
from e2e.flows import Load, loads_running, upload

pytestmark = pytest.mark.e2e

BEFORE = 2.0  # seconds of load before the tracker is stopped
PROGRESS = 2  # steps each load must complete while it is down, and again once it is back
# A request the stopping tracker took but never answered waits out the client's timeout
# (3 s) before failing over; on a busy machine one upload alone can take seconds.
OUTAGE_DEADLINE = 120.0


def test_no_request_fails_while_a_tracker_is_down(target: Target, mogile):
    if not target.can_stop_a_tracker:
        pytest.skip(
            "needs two trackers in MOGILEFS_TRACKERS and, for a stack the suite did not "
            "start, E2E_TRACKER_STOP and E2E_TRACKER_START"
        )
    reader, username = target.client(), new_username()
    assert reader.sign_up(username, PASSWORD).status_code == 302
    data = images.picture(200, 200, "PNG", seed=300)
    links = upload(reader, username, data, "me.png", "image/png")
    key = target.key(links.image_url)

    def read(_: int) -> None:
        response = reader.get(links.image_url)
        assert response.status_code == 200 and response.content == data, response.status_code
        assert mogile.get_paths(key), f"no paths for {key}"

    def write(i: int) -> None:
        client, name = target.client(), new_username()
        response = client.sign_up(name, PASSWORD)
        assert response.status_code == 302, response.status_code
        picture = images.picture(64, 64, "PNG", seed=400 + i)
        uploaded = upload(client, name, picture, "up.png", "image/png")
        response = client.get(uploaded.image_url)
        assert response.status_code == 200 and response.content == picture, response.status_code

    loads = [Load("read", read), Load("upload", write)]

    def keep_going(what: str) -> list[int]:
        """Wait until each load completed PROGRESS more steps (or something failed);
        the steps each made meanwhile."""
        since = [load.done for load in loads]

        def progressed() -> bool:
            done = all(load.done - n >= PROGRESS for load, n in zip(loads, since, strict=True))
            return done or any(load.failures for load in loads)

        wait_until(f"reads and uploads go on {what}", progressed, OUTAGE_DEADLINE, interval=0.2)
        return [load.done - n for load, n in zip(loads, since, strict=True)]

    with loads_running(loads):
        time.sleep(BEFORE)
        target.stop_a_tracker()
        try:
            during = keep_going("with the tracker down")
        finally:
            target.start_the_tracker()
        keep_going("with the tracker back")
    assert all(n >= PROGRESS for n in during), f"steps while the tracker was down: {during}"
