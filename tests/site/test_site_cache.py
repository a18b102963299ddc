"""The site's memcached backend keeps its connection from one request to the next."""

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
from avatar_site import env
from avatar_site.cache import KeepAlivePyMemcacheCache
from django.core.cache.backends.memcached import PyMemcacheCache

pytestmark = pytest.mark.unit


class FakeMemcached(socketserver.ThreadingTCPServer):
    """Answers every ``get`` with a miss and counts the connections it accepted."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.connections = 0
        self.hang_up = threading.Event()  # close the current connection after its answer
        super().__init__(("127.0.0.1", 0), self.Handler)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.server.connections += 1
            for line in self.rfile:
                if line.startswith(b"get "):
                    self.wfile.write(b"END\r\n")
                    self.wfile.flush()
                if self.server.hang_up.is_set():
                    self.server.hang_up.clear()
                    self.request.shutdown(socket.SHUT_RDWR)
                    return


@pytest.fixture
def memcached() -> Iterator[FakeMemcached]:
    server = FakeMemcached()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def requests(backend: type, memcached: FakeMemcached, count: int = 3) -> int:
    """``count`` requests' worth of cache use (Django closes caches after each one)."""
    config = env.parse_cache(None, f"127.0.0.1:{memcached.server_address[1]}")
    cache = backend(config["LOCATION"], config)
    for _ in range(count):
        assert cache.get("avatar-paths") is None
        cache.close()
    return memcached.connections


def test_one_connection_serves_every_request(memcached: FakeMemcached) -> None:
    assert requests(KeepAlivePyMemcacheCache, memcached) == 1


def test_django_s_own_backend_reconnects_for_each_request(memcached: FakeMemcached) -> None:
    assert requests(PyMemcacheCache, memcached) == 3  # what the subclass is for


def test_a_connection_memcached_closed_is_reopened(memcached: FakeMemcached) -> None:
    config = env.parse_cache(None, f"127.0.0.1:{memcached.server_address[1]}")
    cache = KeepAlivePyMemcacheCache(config["LOCATION"], config)
    memcached.hang_up.set()
    assert cache.get("k") is None  # answered, then memcached hangs up
    # The next request finds a dead socket: a miss at worst (ignore_exc), never an error.
    assert cache.get("k") is None
    assert cache.get("k") is None
    assert memcached.connections == 2
