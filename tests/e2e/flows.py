"""Steps the end-to-end tests share: upload through the form, fetch through Perlbal."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
from django_mogilefs.client import MogileFSClient
from django_mogilefs.exceptions import UnknownKeyError
from siteclient import AvatarLinks, SiteClient
from waiting import wait_until

from e2e import images
from e2e.conftest import PASSWORD, REPLICATION_DEADLINE, new_username

if TYPE_CHECKING:
    from e2e.conftest import Target


def upload(client: SiteClient, username: str, data: bytes, name: str, ctype: str) -> AvatarLinks:
    response = client.upload(data, name, ctype)
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"] == f"/u/{username}/"
    links = client.avatar_links(username)
    assert links is not None, "the profile shows no avatar after the upload"
    return links


def served(client: SiteClient, url: str) -> requests.Response:
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
    # Perlbal consumed the reproxy headers; storage URLs never reach the browser.
    assert not {"x-reproxy-url", "x-reproxy-cache-for"} & {h.lower() for h in response.headers}
    return response


def failed_gets(
    target: Target, wanted: Sequence[tuple[str, bytes]], count: int, readers: int = 8
) -> list[tuple[str, int, int]]:
    """GET ``count`` times, round-robin over ``wanted`` (url, bytes), from ``readers``
    concurrent visitors; the (url, status, length) of every answer that was not the bytes.

    Concurrent because a path whose machine is gone costs Perlbal its connect time-out
    before it tries the next one: the count, not the wall time, is what is checked.
    """
    local = threading.local()

    def get(i: int) -> tuple[str, int, int] | None:
        if not hasattr(local, "client"):
            local.client = target.client()
        url, data = wanted[i % len(wanted)]
        response = local.client.get(url)
        if response.status_code == 200 and response.content == data:
            return None
        return (url, response.status_code, len(response.content))

    with ThreadPoolExecutor(readers) as pool:
        return [failure for failure in pool.map(get, range(count)) if failure]


def serve_counts(url: str) -> dict[str, float]:
    """The serve view's answers so far, by kind, from an app server's own /metrics."""
    text = requests.get(url + "/metrics", timeout=10).text
    pattern = r'^mogilefs_serve_responses_total\{kind="(\w+)"\} (\S+)$'
    return {kind: float(value) for kind, value in re.findall(pattern, text, re.M)}


def tracker_bytes(mogile: MogileFSClient, key: str) -> list[bytes]:
    """The content of every copy the tracker lists for ``key``, fetched from the nodes."""
    paths = mogile.get_paths(key, pathcount=3)
    assert paths, f"the tracker has no path for {key}"
    return [requests.get(path, timeout=10).content for path in paths]


def key_unknown(mogile: MogileFSClient, key: str) -> bool:
    try:
        mogile.file_info(key)
    except UnknownKeyError:
        return True
    return False


@dataclass
class Stored:
    """An avatar uploaded through the site: who uploaded it, its bytes, its URLs."""

    client: SiteClient
    data: bytes
    links: AvatarLinks


def store_avatars(target: Target, mogile: MogileFSClient, count: int, seed: int) -> list[Stored]:
    """``count`` users each upload an avatar; returns once every original has its 3
    copies and has been fetched once (so its paths are in the caches)."""
    stored = []
    for n in range(count):
        client, username = target.client(), new_username()
        assert client.sign_up(username, PASSWORD).status_code == 302
        data = images.picture(120, 120, "PNG", seed=seed + n)
        stored.append(Stored(client, data, upload(client, username, data, "me.png", "image/png")))
    for item in stored:
        key = target.key(item.links.image_url)
        wait_until(
            f"{key} has 3 copies",
            lambda k=key: len(devices_of(target, mogile, k)) >= 3,
            REPLICATION_DEADLINE,
        )
        assert served(item.client, item.links.image_url).content == item.data
    return stored


def devices_of(target: Target, mogile: MogileFSClient, key: str) -> set[int]:
    """The devices ``key`` has copies on now (file_on, through file_debug)."""
    return set(target.admin.devids_of(mogile.file_info(key).fid))


def hosts_of(target: Target, devids: set[int]) -> set[int]:
    """The hosts of these devices."""
    return {d.hostid for d in target.admin.get_devices() if d.devid in devids}


class Load:
    """Run ``step`` in a loop on a thread, counting successes and keeping failures."""

    def __init__(self, name: str, step: Callable[[int], None]) -> None:
        self.name, self.step = name, step
        self.done = 0
        self.slowest = (0.0, -1)  # (seconds, step)
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.step(i)
                self.done += 1
            except Exception as exc:  # every kind of failure is what the test counts
                at = time.strftime("%H:%M:%S")
                self.failures.append(f"{self.name} #{i} at {at}: {type(exc).__name__}: {exc}")
            self.slowest = max(self.slowest, (time.monotonic() - started, i))
            i += 1

    def __repr__(self) -> str:
        return f"{self.name}: {self.done} done, slowest {self.slowest[0]:.1f}s (#{self.slowest[1]})"


@contextlib.contextmanager
def loads_running(loads: list[Load]) -> Iterator[list[Load]]:
    """``loads`` run for the ``with`` block, then stop; none of their steps may have failed."""
    for load in loads:
        load.thread.start()
    try:
        yield loads
    finally:
        for load in loads:
            load.stop.set()
        for load in loads:
            load.thread.join(60)
    failures = [f for load in loads for f in load.failures]
    assert failures == [], f"{len(failures)} failed: {failures[:5]}; {loads}"
