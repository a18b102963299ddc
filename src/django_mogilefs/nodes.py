"""HTTP to the storage nodes: PUT with a status check, GET that tries every path.

pymogilefs sends PUTs and GETs without timeouts and without looking at the
status, so a 500 on PUT counted as stored and a 404 body was returned as the
file. Here every response is checked and every call has a timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

import requests

from .exceptions import StorageNodeError

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024


class StorageHTTP:
    """A ``requests`` session with (connect, read) timeouts for mogstored nodes."""

    def __init__(self, timeout: tuple[float, float] = (3.0, 30.0)) -> None:
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # storage nodes are internal: never via a proxy

    def put(self, url: str, body: BinaryIO | Iterable[bytes], size: int) -> None:
        """PUT ``size`` bytes to ``url``; raise :class:`StorageNodeError` unless 2xx."""
        try:
            response = self.session.put(
                url, data=body, headers={"Content-Length": str(size)}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise StorageNodeError(f"PUT {url} failed: {exc}") from exc
        with response:
            if not 200 <= response.status_code < 300:
                raise StorageNodeError(f"PUT {url} answered HTTP {response.status_code}")

    def get(self, urls: Sequence[str], *, method: str = "GET") -> requests.Response:
        """Return the first ``200`` streaming response among ``urls`` (tried in order).

        The caller must close the response. Raises :class:`StorageNodeError` when
        every path fails (refused, timed out, or any status but 200).
        """
        errors = []
        for url in urls:
            try:
                response = self.session.request(method, url, stream=True, timeout=self.timeout)
            except requests.RequestException as exc:
                errors.append(f"{url}: {exc}")
                continue
            if response.status_code == 200:
                return response
            response.close()
            errors.append(f"{url}: HTTP {response.status_code}")
        if not urls:
            errors.append("the tracker returned no paths")
        raise StorageNodeError("No storage node served the file (" + "; ".join(errors) + ")")

    def close(self) -> None:
        self.session.close()


def iter_response(response: requests.Response, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield a response's body and close it, raising :class:`StorageNodeError` if it breaks."""
    try:
        yield from response.iter_content(chunk_size)
    except requests.RequestException as exc:
        raise StorageNodeError(f"Reading {response.url} failed: {exc}") from exc
    finally:
        response.close()
