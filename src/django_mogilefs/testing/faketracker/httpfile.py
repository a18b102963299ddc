"""``MogileFS::HTTPFile->size``, on the package's storage-node HTTP (:mod:`django_mogilefs.nodes`).

The tracker's other requests to its nodes (GET, PUT, DELETE) are
:class:`~django_mogilefs.nodes.StorageHTTP` calls as they are.
"""

from __future__ import annotations

from django_mogilefs.exceptions import StorageNodeError
from django_mogilefs.nodes import StorageHTTP

FILE_MISSING = -1  # MogileFS::HTTPFile::FILE_MISSING


def head_size(http: StorageHTTP, url: str) -> int | None:
    """The Content-Length of a HEAD, ``FILE_MISSING`` on 404, ``None`` if unreachable."""
    try:
        response = http.request("HEAD", url)
    except StorageNodeError:
        return None
    if 200 <= response.status_code < 300 and "content-length" in response.headers:
        return int(response.headers["content-length"])
    return FILE_MISSING if response.status_code == 404 else None
