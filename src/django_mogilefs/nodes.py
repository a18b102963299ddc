"""HTTP to the storage nodes: PUT with a status check, GET that tries every path.

pymogilefs sends PUTs and GETs without timeouts and without looking at the
status, so a 500 on PUT counted as stored and a 404 body was returned as the
file. Here every response is checked and every call has a timeout. The fake
tracker of :mod:`django_mogilefs.testing` reaches its nodes through this too.
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

    def request(
        self,
        method: str,
        url: str,
        *,
        body: BinaryIO | Iterable[bytes] | bytes | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """One request, answered with any status; :class:`StorageNodeError` if it fails
        (refused, timed out, cut off). Without ``stream`` the body has been read."""
        try:
            return self.session.request(
                method, url, data=body, headers=headers, stream=stream, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise StorageNodeError(f"{method} {url} failed: {exc}") from exc

    def put(self, url: str, body: BinaryIO | Iterable[bytes] | bytes, size: int) -> None:
        """PUT ``size`` bytes to ``url``; raise :class:`StorageNodeError` unless 2xx."""
        response = self.request("PUT", url, body=body, headers={"Content-Length": str(size)})
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
                response = self.request(method, url, stream=True)
            except StorageNodeError as exc:
                errors.append(str(exc))
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
