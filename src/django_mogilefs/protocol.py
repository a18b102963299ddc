"""The tracker's line protocol: encoding requests and decoding responses (no sockets here).

A request is ``<command> k1=v1&k2=v2\\r\\n`` in form-urlencoding; a response is
``OK <args>`` or ``ERR <code> <message>[ <callid>]``, URL-encoded by the server
(``MogileFS::Util::eurl``). Request encoding is pymogilefs's (``urlencode`` over
UTF-8, which is sound); decoding is ours, because pymogilefs never decodes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote_plus

from pymogilefs.request import Request

from .exceptions import InvalidKeyError, ProtocolError, tracker_error

MAX_KEY_BYTES = 255
_COMMAND = re.compile(r"^[a-z_]+$")

Args = Mapping[str, object]


class _Command:
    """The ``config`` object pymogilefs's ``Request`` wants: just the command name."""

    def __init__(self, name: str) -> None:
        self.COMMAND = name


def encode_request(command: str, args: Args | None = None) -> bytes:
    """Encode one request line. ``None`` values are left out; bools become ``1``/``0``.

    Every argument value is form-urlencoded, so ``\\r``, ``\\n``, ``&``, ``=``, ``%``,
    ``+``, spaces and non-ASCII text can never start a new command or argument.
    """
    if not _COMMAND.match(command):
        raise ValueError(f"Invalid tracker command name: {command!r}")
    clean = {k: _wire_value(v) for k, v in (args or {}).items() if v is not None}
    if not clean:
        return f"{command}\r\n".encode("ascii")
    return bytes(Request(_Command(command), **clean))


def _wire_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def validate_key(key: str) -> str:
    """Return ``key`` if MogileFS can store it, else raise :class:`InvalidKeyError`.

    Keys are any Unicode text of 1..255 UTF-8 bytes (the ``dkey VARCHAR(255)`` column).
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"MogileFS keys are text, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError("MogileFS keys cannot be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"Key is not valid Unicode text: {key!r}") from exc
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(f"Key is {size} bytes in UTF-8; MogileFS allows at most 255")
    if "\x00" in key:
        raise InvalidKeyError("Keys cannot contain NUL characters")
    return key


def parse_response(line: bytes) -> dict[str, str]:
    """Decode one response line: the ``OK`` arguments, or raise the ``ERR`` as an exception.

    Argument order is random on the real server, so the result is a plain dict.
    """
    ok, value = decode_response(line)
    if ok:
        return value  # type: ignore[return-value]
    code, message, _ = value
    raise tracker_error(code, message)


def decode_response(line: bytes) -> tuple[bool, dict[str, str] | tuple[str, str, str | None]]:
    """``(True, args)`` for ``OK``, ``(False, (code, message, callid))`` for ``ERR``."""
    try:
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"Tracker response is not UTF-8: {line[:80]!r}") from exc
    if text.startswith("OK"):
        rest = text[2:]
        if rest and not rest.startswith(" "):
            raise ProtocolError(f"Malformed tracker response: {text[:80]!r}")
        return True, dict(parse_qsl(rest.strip(), keep_blank_values=True, strict_parsing=False))
    if text.startswith("ERR "):
        parts = text.split(" ", 3)
        code = parts[1] if len(parts) > 1 else ""
        if not code:
            raise ProtocolError(f"Malformed tracker error: {text[:80]!r}")
        message = unquote_plus(parts[2]) if len(parts) > 2 else code
        callid = unquote_plus(parts[3]) if len(parts) > 3 else None
        return False, (code, message, callid)
    raise ProtocolError(f"Unexpected tracker response: {text[:80]!r}")


def numbered(data: Mapping[str, str], count_key: str, pattern: str) -> list[str]:
    """Collect ``pattern % i`` for ``i`` in ``1..data[count_key]`` (absent items skipped).

    Enumerated responses (``path1..pathN``, ``key_1..key_N``) number items within one
    response only; the numbers carry no meaning beyond that.
    """
    count = int(data.get(count_key) or 0)
    return [data[pattern % i] for i in range(1, count + 1) if pattern % i in data]


def destinations(opened: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(devid, path)`` pairs from a ``create_open`` answer, with or without multi_dest."""
    if "dev_count" in opened:
        count = int(opened["dev_count"])
        return [
            (opened[f"devid_{i}"], opened[f"path_{i}"])
            for i in range(1, count + 1)
            if f"path_{i}" in opened
        ]
    return [(opened["devid"], opened["path"])]
