"""memcached with connections that outlive a request.

Django closes every cache when a request finishes (``request_finished`` ->
``close_caches``), and its memcached backends then disconnect, so each request
that touched the cache paid a TCP connect and close. On the media path that is
every cold avatar: in a profile of the serve view the connection set-up and
teardown were a third of its time. Django's cache handler gives each thread its own
client, and pymemcache reconnects by itself after an error, so keeping one open
connection per worker thread is safe.
"""

from __future__ import annotations

from django.core.cache.backends.memcached import PyMemcacheCache


class KeepAlivePyMemcacheCache(PyMemcacheCache):
    """``PyMemcacheCache`` that stays connected between requests."""

    def close(self, **kwargs: object) -> None:
        """Keep the connection: called at the end of every request, not at shutdown."""
