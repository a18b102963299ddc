"""A minimal plain-socket tracker client for tests and fixtures (not the project's client)."""

from __future__ import annotations

import socket

from .protocol import Pairs, Reply, encode_request, from_bytes, parse_reply, to_bytes


class TrackerClient:
    """One persistent connection to a tracker; one request line, one reply line."""

    def __init__(self, hostport: str, timeout: float = 10.0) -> None:
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._file = self.sock.makefile("rb")

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> TrackerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_raw_line(self) -> bytes:
        """One line with its line end, exactly as received; ``ConnectionError`` at EOF."""
        raw = self._file.readline()
        if not raw.endswith(b"\n"):
            raise ConnectionError("tracker closed the connection")
        return raw

    def read_line(self) -> str:
        """One line without its CRLF."""
        return from_bytes(self.read_raw_line().rstrip(b"\r\n"))

    def request(self, line: str) -> str:
        """Send one raw request line and return the raw reply line."""
        self.send(to_bytes(line) + b"\r\n")
        return self.read_line()

    def call(self, command: str, args: Pairs | None = None, **kwargs: object) -> Reply:
        """``call("get_paths", domain="d", key="k")`` → decoded :class:`Reply`."""
        pairs = list(dict(args or {}).items()) + list(kwargs.items())
        return parse_reply(self.request(encode_request(command, pairs)))  # type: ignore[arg-type]

    def admin(self, command: str) -> list[str]:
        """An ``!admin`` command: the lines before the final ``.``."""
        self.send(to_bytes(f"!{command}") + b"\r\n")
        lines = []
        while (line := self.read_line()) != ".":
            lines.append(line)
        return lines
