"""Parser for the recorded tracker session ``tests/data/transcript-2.73.txt``.

The file holds, under ``### section`` headings:

* ``C: <request>`` / ``S: <response>`` pairs, each followed by a latency line ``(1.1 ms)``;
* raw pairs where both sides are Python bytes literals: ``C (one write): b'...'`` or
  ``C: b'!version\\r\\n'`` followed by ``S: b'...'``;
* HTTP steps done by the recording client, e.g.
  ``HTTP: PUT <url> (100000 bytes) -> 200``, ``HTTP: GET <url> -> 200, 100000 bytes,
  identical=True``, ``HTTP: GET <url> after delete -> 404``;
* one summary line of measured replication times (a note, not an exchange).

Any other line is an error, so nothing in the transcript is silently ignored.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

TRANSCRIPT = Path(__file__).resolve().parent.parent / "data" / "transcript-2.73.txt"

_HTTP = re.compile(
    r"HTTP: (?P<method>GET|PUT) (?P<url>\S+)(?: \((?P<put_size>\d+) bytes\))?"
    r"(?P<after_delete> after delete)? -> (?P<status>\d{3})"
    r"(?:, (?P<size>\d+) bytes)?(?:,? identical=(?P<identical>True|False))?"
)
_LATENCY = re.compile(r"\s+\([\d.]+ ms\)")
_NOTE = re.compile(r"replication times \(create_close -> devcount=3\): \[[\d., ]+\]")


@dataclass(frozen=True)
class Exchange:
    """A request line and the response line the real tracker gave."""

    lineno: int
    section: str
    request: str
    response: str


@dataclass(frozen=True)
class RawExchange:
    """Bytes written in one go, and the exact bytes that came back."""

    lineno: int
    section: str
    sent: bytes
    received: bytes


@dataclass(frozen=True)
class HttpStep:
    lineno: int
    section: str
    method: str
    url: str
    status: int
    put_size: int | None
    size: int | None
    identical: bool | None
    after_delete: bool


@dataclass(frozen=True)
class Note:
    lineno: int
    section: str
    text: str


Step = Exchange | RawExchange | HttpStep | Note


def _bytes_literal(text: str, lineno: int) -> bytes:
    value = ast.literal_eval(text)
    if not isinstance(value, bytes):
        raise ValueError(f"line {lineno}: expected a bytes literal, got {text!r}")
    return value


def parse(text: str) -> list[Step]:
    steps: list[Step] = []
    section = ""
    pending: tuple[int, str] | None = None  # a C: line waiting for its S: line
    for lineno, line in enumerate(text.split("\n"), 1):
        if pending is not None:
            start, request = pending
            if not line.startswith("S: "):
                raise ValueError(f"line {lineno}: expected 'S: ' after the C: on line {start}")
            response = line[3:]
            if request.startswith("b'"):
                steps.append(
                    RawExchange(
                        start,
                        section,
                        _bytes_literal(request, start),
                        _bytes_literal(response, lineno),
                    )
                )
            else:
                steps.append(Exchange(start, section, request, response))
            pending = None
        elif not line.strip() or _LATENCY.fullmatch(line):
            continue
        elif line.startswith("### "):
            section = line[4:].strip()
        elif line.startswith(("C: ", "C (one write): ")):
            pending = (lineno, line.split(": ", 1)[1])
        elif match := _HTTP.fullmatch(line):
            steps.append(
                HttpStep(
                    lineno,
                    section,
                    match["method"],
                    match["url"],
                    int(match["status"]),
                    int(match["put_size"]) if match["put_size"] else None,
                    int(match["size"]) if match["size"] else None,
                    None if match["identical"] is None else match["identical"] == "True",
                    bool(match["after_delete"]),
                )
            )
        elif _NOTE.fullmatch(line):
            steps.append(Note(lineno, section, line))
        else:
            raise ValueError(f"line {lineno}: unrecognised transcript line {line!r}")
    if pending is not None:
        raise ValueError(f"line {pending[0]}: C: without S:")
    return steps


def load(path: Path = TRANSCRIPT) -> list[Step]:
    return parse(path.read_text(encoding="utf-8"))
