"""A protocol-faithful stand-in for a MogileFS 2.73 tracker (mogilefsd), for tests.

It speaks the tracker's line protocol as a real 2.73 tracker does (the project checks
it against exchanges recorded from one) and works against real storage nodes over HTTP:
it HEAD-checks uploads in ``create_close``, monitors ``/devN/usage`` and test-writes like
the real monitor, replicates files by HTTP GET + PUT, and deletes them with HTTP
DELETE, all in background threads. State lives in memory, or in a file shared by
several tracker processes (``--state-file``, see :mod:`.statefile`);
``FakeTracker(state=other.state)`` shares it within a process.
``stop_after(command)`` stops a tracker between running a command and answering it.

    from django_mogilefs.testing.faketracker import FakeTracker
    with FakeTracker(port=7001) as tracker:      # starts listening and the jobs
        ...                                      # talk to tracker.hostport

or ``mogilefs-faketracker --listen 127.0.0.1:7001 [--state-file PATH]`` (also
``python -m django_mogilefs.testing.faketracker``).

Known differences from mogilefsd: no database (without a state file nothing survives a
restart; with one, every change rewrites the whole file under one lock); query workers
do not cache (the real ones may answer from a cache for up to one monitor round); the
monitor reads usage on every round (mogilefsd stores it every 15 s); memcached, rebalance
and the mogstored side channel are not modelled; fsck only HEAD-checks copies; keys are
compared byte-wise (case-sensitive) in ``list_keys``.
"""

from .client import TrackerClient
from .protocol import Reply, decode_url_args, encode_request, eurl, parse_reply
from .server import FakeTracker, TrackerConfig

__all__ = [
    "FakeTracker",
    "Reply",
    "TrackerClient",
    "TrackerConfig",
    "decode_url_args",
    "encode_request",
    "eurl",
    "parse_reply",
]
