#!/usr/bin/env python3
"""Stop or start one container through the Docker Engine API, without the docker CLI.

### Usage: python scripts/docker_container.py stop|start CONTAINER [--socket PATH]

The compose `e2e` service runs the end-to-end suite from inside the compose network
and uses this (E2E_STORAGE_NODE_STOP / E2E_STORAGE_NODE_START) to take a storage
node down and bring it back, over the Docker socket mounted into that test-only
container. Exits 0 when the container is in the asked state (also when it already
was), 1 with a message otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import sys
from collections.abc import Sequence
from urllib.parse import quote

DEFAULT_SOCKET = "/var/run/docker.sock"
STOP_GRACE_SECONDS = 5


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (the Docker Engine API's usual transport)."""

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def change(action: str, container: str, socket_path: str = DEFAULT_SOCKET) -> str:
    """Ask the engine to ``stop`` or ``start`` ``container``; return what happened."""
    path = f"/containers/{quote(container, safe='')}/{action}"
    if action == "stop":
        path += f"?t={STOP_GRACE_SECONDS}"
    conn = UnixHTTPConnection(socket_path)
    try:
        conn.request("POST", path, headers={"Content-Length": "0"})
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace").strip()
    except OSError as exc:
        raise RuntimeError(f"cannot reach the Docker engine at {socket_path}: {exc}") from exc
    finally:
        conn.close()
    if response.status == 204:
        return f"{container}: {'stopped' if action == 'stop' else 'started'}"
    if response.status == 304:
        return f"{container}: already {'stopped' if action == 'stop' else 'running'}"
    raise RuntimeError(f"{action} {container}: HTTP {response.status} {body}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("stop", "start"))
    parser.add_argument("container")
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help="(%(default)s)")
    args = parser.parse_args(argv)
    try:
        print(change(args.action, args.container, args.socket))
    except RuntimeError as exc:
        print(f"docker_container: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
