#!/usr/bin/env python3
"""Stop, start or run a command in one container through the Docker Engine API.

### Usage: python scripts/docker_container.py stop|start CONTAINER [--socket PATH]
###        python scripts/docker_container.py exec CONTAINER [--socket PATH] -- COMMAND [ARG...]

The compose `e2e` service runs the end-to-end suite from inside the compose network
and uses this (the E2E_*_STOP / _START / E2E_DEVICE_DESTROY hooks) to take a storage
node down and bring it back, or destroy a device's files, over the Docker socket
mounted into that test-only container; no docker CLI is needed. stop/start exit 0
when the container is in the asked state (also when it already was); exec exits with
the command's status; 1 with a message when the engine refuses.
"""

from __future__ import annotations

import argparse
import http.client
import json
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


def _api(method: str, path: str, body: object, socket_path: str) -> tuple[int, bytes]:
    payload = b"" if body is None else json.dumps(body).encode()
    headers = {"Content-Length": str(len(payload))}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn = UnixHTTPConnection(socket_path)
    try:
        conn.request(method, path, body=payload or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError as exc:
        raise RuntimeError(f"cannot reach the Docker engine at {socket_path}: {exc}") from exc
    finally:
        conn.close()


def run_in(container: str, command: Sequence[str], socket_path: str = DEFAULT_SOCKET) -> int:
    """Run ``command`` in the running ``container`` (as its default user); its exit status.

    The command's output goes to this process's stdout (the engine multiplexes both
    streams; they are not told apart here).
    """
    status, body = _api(
        "POST",
        f"/containers/{quote(container, safe='')}/exec",
        {"Cmd": list(command), "AttachStdout": True, "AttachStderr": True},
        socket_path,
    )
    if status != 201:
        raise RuntimeError(f"exec in {container}: HTTP {status} {body.decode(errors='replace')}")
    exec_id = json.loads(body)["Id"]
    status, output = _api("POST", f"/exec/{exec_id}/start", {"Detach": False}, socket_path)
    if status != 200:
        raise RuntimeError(f"exec in {container}: HTTP {status}")
    sys.stdout.write(_demultiplex(output).decode(errors="replace"))
    status, body = _api("GET", f"/exec/{exec_id}/json", None, socket_path)
    if status != 200:
        raise RuntimeError(f"exec in {container}: HTTP {status} {body.decode(errors='replace')}")
    return int(json.loads(body)["ExitCode"])


def _demultiplex(raw: bytes) -> bytes:
    """The engine's stream format: 8-byte frame headers (stream, size) before each chunk."""
    out, pos = [], 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4 : pos + 8], "big")
        out.append(raw[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return b"".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("stop", "start", "exec"))
    parser.add_argument("container")
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help="(%(default)s)")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if (args.action == "exec") != bool(command):
        parser.error("exec takes -- and a command; stop and start take none")
    try:
        if args.action == "exec":
            return run_in(args.container, command, args.socket)
        print(change(args.action, args.container, args.socket))
    except RuntimeError as exc:
        print(f"docker_container: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
