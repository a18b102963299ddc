"""The tracker wire format, as MogileFS::Server 2.73 speaks it (no sockets here).

The server's side: :func:`parse_request` splits a request line the way
``MogileFS::Worker::Query`` does, :func:`decode_url_args` is
``MogileFS::Util::decode_url_args``, :func:`eurl` is ``MogileFS::Util::eurl``, and
:func:`ok_line` / :func:`err_line` build the response lines. Clients (the tests and
fixtures too) use the package's codec, :mod:`django_mogilefs.protocol`.

Strings carry arbitrary bytes: undecodable bytes survive as surrogate escapes
(``surrogateescape``), so whatever a client sends comes back byte for byte.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping

ENCODING = "utf-8"
ERRORS = "surrogateescape"

# MogileFS::Util::eurl keeps these bytes as they are; a space becomes "+".
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_,-./\\: ")
_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")
# process_line: optional "reqid", whitespace, then a \w+ command and the rest.
_COMMAND = re.compile(r"\s*(\w+)\s*(.*)", re.ASCII | re.DOTALL)

# Default messages of Query.pm's err_line; a code without text repeats the code.
ERROR_TEXT: dict[str, str] = {
    "dup": "Duplicate name/number used.",
    "after_mismatch": "Pattern does not match the after-value?",
    "bad_params": "Invalid parameters to command; please see documentation",
    "class_exists": "That class already exists in that domain",
    "class_has_files": "Class still has files, unable to delete",
    "class_not_found": "Class not found",
    "db": "Database error",
    "device_has_files": "Device still has files, unable to delete",
    "device_not_dead": "Device isn't marked as dead, unable to delete",
    "device_in_queue": "Device is in queue to receive files",
    "domain_has_files": "Domain still has files, unable to delete",
    "domain_exists": "That domain already exists",
    "domain_not_empty": "Domain still has classes, unable to delete",
    "domain_not_found": "Domain not found",
    "failure": "Operation failed",
    "host_exists": "That host already exists",
    "host_mismatch": "The device specified doesn't belong to the host specified",
    "host_not_empty": "Unable to delete host; it contains devices still",
    "host_not_found": "Host not found",
    "invalid_checker_level": "Checker level invalid.  Please see documentation on this command.",
    "invalid_mindevcount": "The mindevcount must be at least 1",
    "key_exists": "Target key name already exists; can't overwrite.",
    "no_class": "No class provided",
    "no_devices": "No devices found to store file",
    "no_device": "Device not found",
    "no_domain": "No domain provided",
    "no_host": "No host provided",
    "no_ip": "IP required to create host",
    "no_port": "Port required to create host",
    "no_temp_file": "No tempfile or file already closed",
    "none_match": "No keys match that pattern and after-value (if any).",
    "plugin_aborted": "Action aborted by plugin",
    "state_too_high": "Status cannot go from dead to alive; must use down",
    "unknown_command": "Unknown server command",
    "unknown_host": "Host not found",
    "unknown_state": "Invalid/unknown state",
    "unreg_domain": "Domain name invalid/not found",
    "rebal_not_started": "Rebalance not running",
    "no_rebal_state": "No available rebalance status",
    "no_rebal_policy": "No rebalance policy available",
    "nodel_default_class": "Cannot delete the default class",
}

Value = str | int | float | None
Pairs = Mapping[str, Value] | Iterable[tuple[str, Value]]


def to_bytes(text: str) -> bytes:
    return text.encode(ENCODING, ERRORS)


def from_bytes(raw: bytes) -> str:
    return raw.decode(ENCODING, ERRORS)


def eurl(value: Value) -> str:
    """``MogileFS::Util::eurl``: keep ``[A-Za-z0-9_,-./\\: ]``, space to ``+``, else ``%XX``."""
    if value is None:
        return ""
    out = []
    for byte in to_bytes(str(value)):
        if byte == 0x20:
            out.append("+")
        elif byte in _SAFE:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _unescape(text: str) -> str:
    raw = to_bytes(text.replace("+", " "))
    return from_bytes(_PCT.sub(lambda m: bytes([int(m.group(1), 16)]), raw))


def decode_url_args(argstr: str) -> dict[str, str]:
    """``MogileFS::Util::decode_url_args``: form-decode ``k=v&k2=v2``.

    As in Perl: empty (and ``"0"``) pairs are skipped, ``k`` and ``k=`` both give ``""``,
    only the text between the first and second ``=`` is the value, and a repeated name
    joins its values with NUL (or concatenates them when the earlier value is false).
    """
    args: dict[str, str] = {}
    for pair in argstr.split("&"):
        if not perl_true(pair):
            continue
        parts = pair.split("=")
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()  # Perl's split drops trailing empty fields
        name = _unescape(parts[0])
        value = _unescape(parts[1]) if len(parts) > 1 else ""
        if name in args:
            old = args[name]
            args[name] = f"{old}\0{value}" if perl_true(old) else old + value
        else:
            args[name] = value
    return args


def parse_request(line: str) -> tuple[str, dict[str, str]] | None:
    """Split a request line into (lower-case command, args); ``None`` = unknown command."""
    match = _COMMAND.fullmatch(line)
    if not match:
        return None
    return match.group(1).lower(), decode_url_args(match.group(2))


def perl_true(value: object) -> bool:
    """Perl truthiness of a request value: undef, ``""`` and ``"0"`` are false."""
    return value is not None and value != "" and value != "0" and value != 0


def perl_num(value: object) -> float:
    """Perl's numeric conversion of a string (``"12abc"`` is 12, ``"abc"`` is 0)."""
    if value is None:
        return 0
    match = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", str(value))
    return float(match.group(1)) if match else 0


def perl_int(value: object) -> int:
    return int(perl_num(value))


def _pairs(args: Pairs | None) -> list[tuple[str, Value]]:
    if args is None:
        return []
    if isinstance(args, Mapping):
        return list(args.items())
    return list(args)


def ok_line(
    args: Pairs | None = None, callid: str | None = None, rng: random.Random | None = None
) -> str:
    """``OK <args>`` (always a space after OK); key order shuffled like a Perl hash."""
    pairs = _pairs(args)
    if callid is not None:
        pairs = [(k, v) for k, v in pairs if k != "callid"] + [("callid", callid)]
    if rng is not None:
        rng.shuffle(pairs)
    return "OK " + "&".join(f"{eurl(k)}={eurl(v)}" for k, v in pairs)


def err_line(code: str, text: str | None = None, callid: str | None = None) -> str:
    """``ERR <code> <eurl text>[ <eurl callid>]``."""
    message = text or ERROR_TEXT.get(code) or code
    suffix = f" {eurl(callid)}" if callid is not None else ""
    return f"ERR {code} {eurl(message)}{suffix}"
