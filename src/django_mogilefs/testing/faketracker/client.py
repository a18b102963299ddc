"""A plain-socket tracker connection for tests and fixtures, on the package's own codec.

Unlike :class:`django_mogilefs.client.MogileFSClient` it never fails over, retries or
raises for ``ERR``: a test sees exactly one request and one answer (a :class:`Reply`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django_mogilefs.protocol import decode_response, encode_request

from .protocol import from_bytes, to_bytes


@dataclass
class Reply:
    """A decoded response line."""

    ok: bool
    args: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    message: str | None = None
    callid: str | None = None
    raw: str = ""


def parse_reply(line: str) -> Reply:
    """Decode ``OK k=v&…`` or ``ERR code message[ callid]`` (CRLF already removed)."""
    ok, value = decode_response(to_bytes(line))
    if ok:
        return Reply(True, value, raw=line)  # type: ignore[arg-type]
    code, message, callid = value  # type: ignore[misc]
    return Reply(False, code=code, message=message, callid=callid, raw=line)


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

    def call(
        self,
        command: str,
        args: Mapping[str, object] | Iterable[tuple[str, object]] | None = None,
        **kwargs: object,
    ) -> Reply:
        """``call("get_paths", domain="d", key="k")`` → decoded :class:`Reply`."""
        pairs = dict(args or {})
        pairs.update(kwargs)
        self.send(encode_request(command, pairs))
        return parse_reply(self.read_line())

    def admin(self, command: str) -> list[str]:
        """An ``!admin`` command: the lines before the final ``.``."""
        self.send(to_bytes(f"!{command}") + b"\r\n")
        lines = []
        while (line := self.read_line()) != ".":
            lines.append(line)
        return lines
