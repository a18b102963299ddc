"""The storage-node HTTP helper, which the backend and the fake tracker both use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django_mogilefs.exceptions import StorageNodeError
from django_mogilefs.nodes import StorageHTTP
from django_mogilefs.testing import PythonStorageNode, free_port

pytestmark = pytest.mark.unit


@pytest.fixture
def node(tmp_path: Path) -> Iterator[PythonStorageNode]:
    node = PythonStorageNode("mog1", "127.0.0.1", free_port(("127.0.0.1",)), [1], tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def test_a_request_gives_any_status_and_a_failure_is_a_storage_node_error(
    node: PythonStorageNode,
) -> None:
    http = StorageHTTP((2.0, 2.0))
    url = f"{node.base_url}/dev1/f.fid"
    http.put(url, b"body", 4)
    assert http.request("HEAD", url).headers["Content-Length"] == "4"
    assert http.request("DELETE", url).status_code == 204
    assert http.request("DELETE", url).status_code == 404  # an answer, not an error
    with pytest.raises(StorageNodeError, match=r"answered HTTP 404"):
        http.put(f"{node.base_url}/dev9/f.fid", b"body", 4)  # no such device
    node.stop()
    with pytest.raises(StorageNodeError, match=r"^HEAD http://\S+ failed: "):
        http.request("HEAD", url)
    with pytest.raises(StorageNodeError, match=r"No storage node served the file"):
        http.get([url])
