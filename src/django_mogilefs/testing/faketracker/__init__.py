"""A protocol-faithful stand-in for a MogileFS 2.73 tracker (mogilefsd), for tests.

It speaks the tracker's line protocol as a real 2.73 tracker does (the project checks
it against exchanges recorded from one) and works against real storage nodes over HTTP:
it HEAD-checks uploads in ``create_close``, monitors ``/devN/usage`` and test-writes like
the real monitor, replicates files by HTTP GET + PUT, moves them for a rebalance, reaps
dead devices and deletes files with HTTP DELETE, all in background threads. Its data is
in a database with the real schema (:mod:`.schema`): a private SQLite file by default,
an SQLite file several tracker processes share (``--database PATH``), or MySQL
(``--database mysql://...``), so several fakes act as several mogilefsd on one
database; ``FakeTracker(store=other.store)`` shares it within a process. Each tracker
has its own monitor, so two can disagree for a moment about a device, as real ones do.
``stop_after(command)`` stops a tracker between running a command and answering it.

    from django_mogilefs.testing.faketracker import FakeTracker
    with FakeTracker(port=7001) as tracker:      # starts listening and the jobs
        ...                                      # talk to tracker.hostport

or ``mogilefs-faketracker --listen 127.0.0.1:7001 [--database PATH|URL]`` (also
``python -m django_mogilefs.testing.faketracker``).

Known differences from mogilefsd: query workers do not cache (the real ones may answer
from a cache for up to one monitor round); a tracker that shuts down hands the queue
rows it had taken back at once (mogilefsd leaves them claimed for 1000 s); memcached and
the mogstored side channel are not modelled; fsck only HEAD-checks copies and keeps no
fsck_log. Keys compare as the database does: byte-wise in SQLite, by the database's
collation in MySQL.
"""

from .client import Reply, TrackerClient, parse_reply
from .protocol import decode_url_args, eurl
from .server import FakeTracker, TrackerConfig

__all__ = [
    "FakeTracker",
    "Reply",
    "TrackerClient",
    "TrackerConfig",
    "decode_url_args",
    "eurl",
    "parse_reply",
]
