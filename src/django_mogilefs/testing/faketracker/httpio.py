"""The little HTTP the tracker speaks to storage nodes (HEAD, GET, PUT, DELETE)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

FILE_MISSING = -1  # MogileFS::HTTPFile::FILE_MISSING


@dataclass
class HttpResult:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def request(method: str, url: str, body: bytes | None = None, timeout: float = 2.0) -> HttpResult:
    """One request on a fresh connection. Raises ``OSError`` when the node cannot be reached."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise OSError(f"unsupported URL {url!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Length": str(len(body))} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read() if method != "HEAD" else b""
        return HttpResult(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
    except (http.client.HTTPException, ValueError) as exc:
        raise OSError(f"{method} {url}: {exc}") from exc
    finally:
        conn.close()


def head_size(url: str, timeout: float = 2.0) -> int | None:
    """HTTPFile->size: the Content-Length, FILE_MISSING on 404, ``None`` if unreachable."""
    try:
        res = request("HEAD", url, timeout=timeout)
    except OSError:
        return None
    if res.ok and "content-length" in res.headers:
        return int(res.headers["content-length"])
    return FILE_MISSING if res.status == 404 else None
