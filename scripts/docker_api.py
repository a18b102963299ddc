#!/usr/bin/env python3
"""The Docker Engine API, for the end-to-end suite's fault hooks (no docker CLI needed).

### Usage: python scripts/docker_api.py [--engine URL] stop|start CONTAINER
###        python scripts/docker_api.py [--engine URL] exec CONTAINER -- COMMAND [ARG...]
###        python scripts/docker_api.py [--engine URL] node-availability NODE active|drain
###        python scripts/docker_api.py [--engine URL] node-label NODE KEY=VALUE
###        python scripts/docker_api.py [--engine URL] service-update SERVICE...

The e2e runner (compose's `e2e` service, the swarm rehearsal's) has an engine's socket
mounted and uses this in its E2E_* hooks: stop and start a storage node, a tracker or
the media tier, destroy a device's files, drain a swarm machine, force a rolling update.

* ``--engine``: a socket path, ``unix:///path`` or ``tcp://host:port`` (default
  /var/run/docker.sock).
* CONTAINER: a name or id, or ``service=NAME`` for the running task of swarm service
  NAME on this engine.
* ``service-update``: ``docker service update --force`` for each service in turn,
  waiting until it has completed (exit 1 if it rolls back or is paused).

stop/start exit 0 when the container is in the asked state (also when it already was);
exec exits with the command's status; 1 with a message when the engine refuses.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import time
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

DEFAULT_ENGINE = "/var/run/docker.sock"
STOP_GRACE_SECONDS = 5
UPDATE_TIMEOUT = 600.0


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


class Engine:
    """One engine: ``request`` returns (status, body)."""

    def __init__(self, url: str = DEFAULT_ENGINE) -> None:
        self.url = url

    def _connection(self) -> http.client.HTTPConnection:
        if self.url.startswith("tcp://"):
            parts = urlsplit(self.url)
            return http.client.HTTPConnection(parts.hostname or "", parts.port or 2375, timeout=60)
        return UnixHTTPConnection(self.url.removeprefix("unix://"))

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Length": str(len(payload))}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = self._connection()
        try:
            conn.request(method, path, body=payload or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except OSError as exc:
            raise RuntimeError(f"cannot reach the Docker engine at {self.url}: {exc}") from exc
        finally:
            conn.close()

    def json(
        self, method: str, path: str, body: object = None, ok: Sequence[int] = (200,)
    ) -> object:
        status, data = self.request(method, path, body)
        if status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {status} {data.decode(errors='replace')}")
        return json.loads(data) if data else None

    # -- containers ---------------------------------------------------------------------

    def container(self, spec: str) -> str:
        """A container name or id, or ``service=NAME``: its running task here."""
        if not spec.startswith("service="):
            return spec
        service = spec.removeprefix("service=")
        filters = json.dumps({"label": [f"com.docker.swarm.service.name={service}"]})
        found = self.json("GET", f"/containers/json?filters={quote(filters)}")
        if not found:
            raise RuntimeError(f"no running task of service {service} on {self.url}")
        return str(found[0]["Id"])  # type: ignore[index]

    def change(self, action: str, container: str) -> str:
        """``stop`` or ``start`` ``container``; what happened."""
        path = f"/containers/{quote(container, safe='')}/{action}"
        if action == "stop":
            path += f"?t={STOP_GRACE_SECONDS}"
        status, body = self.request("POST", path)
        if status == 204:
            return f"{container}: {'stopped' if action == 'stop' else 'started'}"
        if status == 304:
            return f"{container}: already {'stopped' if action == 'stop' else 'running'}"
        raise RuntimeError(f"{action} {container}: HTTP {status} {body.decode(errors='replace')}")

    def run_in(self, container: str, command: Sequence[str]) -> int:
        """Run ``command`` in the running ``container``; its exit status. The output
        goes to this process's stdout (both streams, not told apart)."""
        created = self.json(
            "POST",
            f"/containers/{quote(container, safe='')}/exec",
            {"Cmd": list(command), "AttachStdout": True, "AttachStderr": True},
            ok=(201,),
        )
        exec_id = created["Id"]  # type: ignore[index]
        status, output = self.request("POST", f"/exec/{exec_id}/start", {"Detach": False})
        if status != 200:
            raise RuntimeError(f"exec in {container}: HTTP {status}")
        sys.stdout.write(_demultiplex(output).decode(errors="replace"))
        return int(self.json("GET", f"/exec/{exec_id}/json")["ExitCode"])  # type: ignore[index]

    # -- swarm ----------------------------------------------------------------------------

    def update_node(self, node: str, change: dict[str, object]) -> str:
        """Change a swarm node's spec (``Availability``, ``Labels``) as the manager sees it."""
        current = self.json("GET", f"/nodes/{quote(node, safe='')}")
        spec = {**current["Spec"], **change}  # type: ignore[index]
        version = current["Version"]["Index"]  # type: ignore[index]
        self.json("POST", f"/nodes/{quote(node, safe='')}/update?version={version}", spec)
        return f"{node}: {', '.join(f'{k}={v}' for k, v in change.items())}"

    def force_update(self, service: str, timeout: float = UPDATE_TIMEOUT) -> str:
        """``docker service update --force SERVICE``, waiting until it has completed."""
        current = self.json("GET", f"/services/{quote(service, safe='')}")
        spec = current["Spec"]  # type: ignore[index]
        task = spec["TaskTemplate"]
        task["ForceUpdate"] = int(task.get("ForceUpdate", 0)) + 1
        version = current["Version"]["Index"]  # type: ignore[index]
        self.json("POST", f"/services/{quote(service, safe='')}/update?version={version}", spec)
        started, deadline = time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(1)
            state = (
                self.json("GET", f"/services/{quote(service, safe='')}").get("UpdateStatus") or {}
            )  # type: ignore[union-attr]
            if state.get("State") == "completed":
                return f"{service}: updated in {time.monotonic() - started:.0f} s"
            if state.get("State") in (
                "rollback_started",
                "rollback_completed",
                "paused",
                "rollback_paused",
            ):
                raise RuntimeError(
                    f"{service}: update {state['State']}: {state.get('Message', '')}"
                )
        raise RuntimeError(f"{service}: update not done after {timeout:g} s")


def _demultiplex(raw: bytes) -> bytes:
    """The engine's stream format: 8-byte frame headers (stream, size) before each chunk."""
    out, pos = [], 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4 : pos + 8], "big")
        out.append(raw[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return b"".join(out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default=DEFAULT_ENGINE, help="(%(default)s)")
    actions = parser.add_subparsers(dest="action", required=True)
    for action in ("stop", "start", "exec"):
        actions.add_parser(action).add_argument("container")
    node = actions.add_parser("node-availability")
    node.add_argument("node")
    node.add_argument("availability", choices=("active", "drain", "pause"))
    label = actions.add_parser("node-label")
    label.add_argument("node")
    label.add_argument("label", help="KEY=VALUE")
    update = actions.add_parser("service-update")
    update.add_argument("services", nargs="+")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = _parser()
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if (args.action == "exec") != bool(command):
        parser.error("exec takes -- and a command; the other actions take none")
    engine = Engine(args.engine)
    try:
        if args.action == "exec":
            return engine.run_in(engine.container(args.container), command)
        if args.action in ("stop", "start"):
            print(engine.change(args.action, engine.container(args.container)))
        elif args.action == "node-availability":
            print(engine.update_node(args.node, {"Availability": args.availability}))
        elif args.action == "node-label":
            key, _, value = args.label.partition("=")
            labels = dict(
                engine.json("GET", f"/nodes/{quote(args.node, safe='')}")["Spec"].get("Labels")
                or {}
            )  # type: ignore[index]
            print(engine.update_node(args.node, {"Labels": {**labels, key: value}}))
        else:
            for service in args.services:
                print(engine.force_update(service), flush=True)
    except RuntimeError as exc:
        print(f"docker_api: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
