"""Typed errors for everything that can go wrong talking to MogileFS.

The tree follows pymemcache's: one base class, one class per tracker error code
that callers act on, and separate classes for transport failures, so that code
can tell "the key does not exist" from "the cluster is unreachable".
"""

from __future__ import annotations


class MogileFSError(Exception):
    """Base class of every error raised by django_mogilefs."""


class InvalidKeyError(MogileFSError, ValueError):
    """A key was rejected locally, before anything was sent (empty, too long, bad text)."""


class TrackerUnavailableError(MogileFSError):
    """No tracker answered: every one refused, timed out or closed the connection."""


class ProtocolError(MogileFSError):
    """A tracker sent a line that is not a valid ``OK``/``ERR`` response."""


class StorageNodeError(MogileFSError):
    """No storage node could serve or accept the bytes (every path failed over HTTP)."""


class TrackerError(MogileFSError):
    """The tracker answered ``ERR <code> <message>``.

    ``code`` is the tracker's bare error token, ``message`` its decoded text.
    Codes without a dedicated subclass raise this class itself.

    ``after_lost_answer`` is true when this answer came from a tracker the request
    was resent to because an earlier tracker may have run it and then lost the
    answer (timed out, reset, stopped mid-request): the error may describe the
    earlier attempt's own effect rather than a refusal.
    """

    code: str = ""
    after_lost_answer: bool = False

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        self.message = message or code
        super().__init__(f"{code}: {self.message}")


class UnknownKeyError(TrackerError):
    """``unknown_key`` / ``invalid_key``: the key does not exist in the domain."""


class UnregisteredDomainError(TrackerError):
    """``unreg_domain`` / ``domain_not_found``: the domain does not exist."""


class UnregisteredClassError(TrackerError):
    """``unreg_class`` / ``class_not_found``: the class does not exist in the domain."""


class NoDevicesError(TrackerError):
    """``no_devices``: no writeable device can take the file right now."""


class KeyExistsError(TrackerError):
    """``key_exists``: rename target already exists."""


class NoneMatchError(TrackerError):
    """``none_match``: ``list_keys`` found nothing (the tracker's way to say "empty")."""


class DomainExistsError(TrackerError):
    """``domain_exists``."""


class ClassExistsError(TrackerError):
    """``class_exists``."""


class HostExistsError(TrackerError):
    """``host_exists``, or ``dup`` when another host already has the IP."""


class UnknownHostError(TrackerError):
    """``unknown_host`` / ``host_not_found`` / ``unknown_hostid``."""


class DeviceExistsError(TrackerError):
    """``existing_devid``."""


class CloseFailedError(TrackerError):
    """``create_close`` refused the upload (size or checksum mismatch, temp file gone).

    The tracker has discarded the temporary fid: the upload must start over.
    """


class ChecksumMismatchError(CloseFailedError):
    """``checksum_mismatch``: the copy on the storage node does not have the sent checksum.

    Nothing was stored under the key (a file already there is kept).
    """


ERROR_CLASSES: dict[str, type[TrackerError]] = {
    "unknown_key": UnknownKeyError,
    "invalid_key": UnknownKeyError,
    "unreg_domain": UnregisteredDomainError,
    "domain_not_found": UnregisteredDomainError,
    "unreg_class": UnregisteredClassError,
    "class_not_found": UnregisteredClassError,
    "no_devices": NoDevicesError,
    "key_exists": KeyExistsError,
    "none_match": NoneMatchError,
    "domain_exists": DomainExistsError,
    "class_exists": ClassExistsError,
    "host_exists": HostExistsError,
    "dup": HostExistsError,
    "unknown_host": UnknownHostError,
    "host_not_found": UnknownHostError,
    "unknown_hostid": UnknownHostError,
    "existing_devid": DeviceExistsError,
    "size_mismatch": CloseFailedError,
    "size_verify_error": CloseFailedError,
    "checksum_mismatch": ChecksumMismatchError,
    "no_temp_file": CloseFailedError,
}


def tracker_error(code: str, message: str) -> TrackerError:
    """Build the exception for an ``ERR`` line: its dedicated class or ``TrackerError``."""
    return ERROR_CLASSES.get(code, TrackerError)(code, message)
