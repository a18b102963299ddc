"""What a state-changing command's error means when it answers a resent request.

When a tracker may have run a request and then lost the answer (it timed out, reset
the connection or stopped mid-request), :class:`~django_mogilefs.tracker.TrackerPool`
sends the request to the next tracker. For a read that is harmless. For a write, the
next tracker (sharing the first one's database) may rightly refuse what the first one
already did: ``delete`` answers ``unknown_key``, ``create_close`` answers
``no_temp_file``. Each such refusal is checked here against the tracker's state, and
only an error that the lost attempt cannot explain is raised.

Per command:

* ``create_open``, ``updateclass``, ``update_*``, ``set_state``, ``set_weight``,
  ``set_server_setting``: a resend does the same thing again, so its answer stands (a
  lost ``create_open`` leaves an unused temp file, which the tracker reaps).
* ``delete`` / ``delete_domain`` / ``delete_class`` / ``delete_host`` answering that the
  thing is gone, ``create_domain`` / ``create_class`` / ``create_device`` answering that
  it exists: the lost attempt did it.
* ``create_close`` answering ``no_temp_file``: done if ``file_info`` shows the key with
  this fid (and size); otherwise the error stands and the caller starts over.
* ``rename`` answering ``unknown_key`` or ``key_exists``: done if ``from_key`` is gone
  and ``to_key`` exists.
* ``create_host`` answering ``host_exists``/``dup``: done if the host has this name and
  IP; its ``hostid`` is read back with ``get_hosts``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .exceptions import TrackerError, UnknownKeyError
from .protocol import Args

Answer = dict[str, str]

# (command, error code) pairs that mean "the lost attempt already did it".
DONE_ON_RESEND: dict[str, frozenset[str]] = {
    "delete": frozenset({"unknown_key"}),
    "delete_domain": frozenset({"domain_not_found"}),
    "delete_class": frozenset({"class_not_found"}),
    "delete_host": frozenset({"unknown_host"}),
    "create_domain": frozenset({"domain_exists"}),
    "create_class": frozenset({"class_exists"}),
    "create_device": frozenset({"existing_devid"}),
}


class Requester(Protocol):
    def request(self, command: str, args: Args | None = None) -> Answer: ...


def resolve(pool: Requester, command: str, args: Args, error: TrackerError) -> Answer | None:
    """The answer the lost attempt would have given, or ``None`` if ``error`` stands."""
    if error.code in DONE_ON_RESEND.get(command, ()):
        return {}
    check = _CHECKS.get((command, error.code))
    return check(pool, args) if check else None


def _file_info(pool: Requester, args: Args, key: object) -> Answer | None:
    try:
        return pool.request("file_info", {"domain": args.get("domain"), "key": key})
    except UnknownKeyError:
        return None


def _closed(pool: Requester, args: Args) -> Answer | None:
    info = _file_info(pool, args, args.get("key"))
    if info is None or info.get("fid") != str(args.get("fid")):
        return None
    size = args.get("size")
    if size is not None and info.get("length") != str(size):
        return None
    return {}


def _renamed(pool: Requester, args: Args) -> Answer | None:
    if args.get("from_key") == args.get("to_key"):
        return None
    moved = _file_info(pool, args, args.get("to_key")) is not None
    return {} if moved and _file_info(pool, args, args.get("from_key")) is None else None


def _host_created(pool: Requester, args: Args) -> Answer | None:
    hosts = pool.request("get_hosts")
    for n in range(1, int(hosts.get("hosts") or 0) + 1):
        if hosts.get(f"host{n}_hostname") == str(args.get("host")) and hosts.get(
            f"host{n}_hostip"
        ) == str(args.get("ip")):
            return {"hostid": hosts.get(f"host{n}_hostid", ""), "hostname": str(args["host"])}
    return None


_CHECKS: dict[tuple[str, str], Callable[[Requester, Args], Answer | None]] = {
    ("create_close", "no_temp_file"): _closed,
    ("rename", "unknown_key"): _renamed,
    ("rename", "key_exists"): _renamed,
    ("create_host", "host_exists"): _host_created,
    ("create_host", "dup"): _host_created,
}
