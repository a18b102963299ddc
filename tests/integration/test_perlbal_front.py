"""perlbal/perlbal.conf, run by the real Perlbal through perlbal/start.

A dummy app server answers like the site does (X-REPROXY-URL pointing at a storage
node); a plain file server plays the storage node.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import http.client
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django_mogilefs.testing import free_port
from ownenv import own_environ
from static import compose_file as cf

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("perlbal"), reason="needs Debian's perlbal package"),
]

START = cf.ROOT / "perlbal" / "start"
BLOB = bytes(range(256)) * 1200  # 300 KB: bigger than one read buffer
UPLOAD_LIMIT = 1024 * 1024  # the dummy app's REQUEST_MAX_BYTES


@dataclass
class AppServer:
    """Keep-alive HTTP/1.1 server that counts requests and open connections."""

    storage_port: int
    dead_port: int
    gone_port: int
    requests: Counter[str] = field(default_factory=Counter)
    capabilities: list[str] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)  # body bytes read, by path
    hosts: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    opened: int = 0
    open_now: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps connections open unless told otherwise

            def setup(self) -> None:
                super().setup()
                with app.lock:
                    app.opened += 1
                    app.open_now += 1

            def finish(self) -> None:
                super().finish()
                with app.lock:
                    app.open_now -= 1

            def do_GET(self) -> None:
                app.requests[self.path] += 1
                app.hosts[self.path].append(self.headers.get("Host", ""))
                app.capabilities.append(self.headers.get("X-Proxy-Capabilities", ""))
                storage = f"http://127.0.0.1:{app.storage_port}/dev1/blob.fid"
                dead = f"http://127.0.0.1:{app.dead_port}/dev9/blob.fid"
                headers = {"Content-Type": "text/plain"}
                body = b"hello from the app"
                gone = f"http://127.0.0.1:{app.gone_port}/dev8/blob.fid"
                if self.path == "/avatar":
                    headers = {"Content-Type": "image/png", "X-REPROXY-URL": f"{dead} {storage}"}
                    body = b""
                elif self.path == "/gone-first":
                    headers = {"Content-Type": "image/png", "X-REPROXY-URL": f"{gone} {storage}"}
                    body = b""
                elif self.path == "/cached" or self.path.startswith("/media/"):
                    headers = {
                        "Content-Type": "image/png",
                        "X-REPROXY-URL": storage,
                        "X-REPROXY-CACHE-FOR": "60; Content-Type",
                    }
                    body = b""
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                # Like the site: a body over UPLOAD_LIMIT is judged from Content-Length,
                # read and thrown away, and refused with 413; others are read in full.
                app.requests[self.path] += 1
                length = int(self.headers["Content-Length"])
                digest, left = hashlib.sha256(), length
                while left > 0:
                    chunk = self.rfile.read1(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
                    app.received[self.path] += len(chunk)
                    if length <= UPLOAD_LIMIT:
                        digest.update(chunk)
                status, reply = 200, digest.hexdigest().encode()
                if length > UPLOAD_LIMIT:
                    status, reply = 413, b"too large for the app"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextlib.contextmanager
def gone_node() -> Iterator[int]:
    """A port whose connections never complete, like a stopped container's address.

    A listening socket with a full accept queue: the kernel drops further SYNs, so a
    connection attempt hangs (on loopback, where nothing else can be made to hang).
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(2)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


def serve(server: http.server.HTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"perlbal exited early: {proc.communicate()[0]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"perlbal did not listen on {port} within {timeout}s")


@dataclass
class Front:
    proc: subprocess.Popen[str]  # perlbal/start
    port: int
    mgmt_port: int
    app: AppServer
    app_port: int
    tmpdir: Path  # Perlbal's TMPDIR: where it would spool anything
    media: AppServer  # the media tier: the app itself unless PERLBAL_MEDIA_BACKENDS is set
    media_port: int

    def files_written(self) -> list[Path]:
        return [p for p in self.tmpdir.rglob("*") if p.is_file()]

    def post_raw(
        self, path: str, length: int, parts: list[bytes], between: Callable[[], None]
    ) -> bytes:
        """POST ``parts`` of a ``length``-byte body, calling ``between`` between them."""
        head = f"POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {length}\r\n\r\n"
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(head.encode())
            for index, part in enumerate(parts):
                if index:
                    between()
                sock.sendall(part)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        return reply

    def get(
        self,
        path: str,
        method: str = "GET",
        body: bytes | None = None,
        timeout: float = 10,
        host: str = "localhost",
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Host": host})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def manage(self, command: str) -> str:
        with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=5) as sock:
            sock.sendall(command.encode() + b"\r\n")
            data = b""
            while not data.endswith(b".\r\n") and not data.endswith(b".\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data.decode()


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """One app server behind Perlbal (PERLBAL_MEDIA_BACKENDS unset): it answers everything."""
    with contextlib.ExitStack() as stack:
        yield from _front(tmp_path_factory, stack, media_tier="same")


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """A site app server and a media tier of its own (PERLBAL_MEDIA_BACKENDS)."""
    with contextlib.ExitStack() as stack:
        yield from _front(tmp_path_factory, stack, media_tier="own")


@pytest.fixture
def lost_tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """PERLBAL_MEDIA_BACKENDS names a port nothing listens on (yet): ``media_port``."""
    with contextlib.ExitStack() as stack:
        yield from _front(tmp_path_factory, stack, media_tier="down")


@pytest.fixture
def gone_tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """PERLBAL_MEDIA_BACKENDS names a port whose connections never complete."""
    with contextlib.ExitStack() as stack:
        yield from _front(tmp_path_factory, stack, media_tier="gone")


def _front(
    tmp_path_factory: pytest.TempPathFactory,
    stack: contextlib.ExitStack,
    media_tier: str,
    **settings: str,
) -> Iterator[Front]:
    tmp = tmp_path_factory.mktemp("perlbal-front")
    (tmp / "storage" / "dev1").mkdir(parents=True)
    (tmp / "storage" / "dev1" / "blob.fid").write_bytes(BLOB)
    storage = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp / "storage")),
    )
    gone = stack.enter_context(gone_node())
    app = AppServer(storage_port=storage.server_address[1], dead_port=free_port(), gone_port=gone)
    app_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), app.handler())
    servers = [storage, app_server]
    media, media_port, tier = app, app_server.server_address[1], {}
    if media_tier != "same":
        media = AppServer(app.storage_port, app.dead_port, app.gone_port)
        media_port = stack.enter_context(gone_node()) if media_tier == "gone" else free_port()
        if media_tier == "own":
            servers.append(
                http.server.ThreadingHTTPServer(("127.0.0.1", media_port), media.handler())
            )
        tier = {"PERLBAL_MEDIA_BACKENDS": f"localhost:{media_port}"}
    for server in servers:
        serve(server)
    port, mgmt_port = free_port(), free_port()
    env = own_environ(
        # "localhost" checks that names are resolved into the pools' node files.
        PERLBAL_BACKENDS=f"localhost:{app_server.server_address[1]}",
        PERLBAL_LISTEN=f"127.0.0.1:{port}",
        PERLBAL_MGMT_LISTEN=f"127.0.0.1:{mgmt_port}",
        PERLBAL_NODEFILE=str(tmp / "nodes"),
        TMPDIR=str(tmp / "perlbal-tmp"),
        **tier,
        **settings,
    )
    (tmp / "perlbal-tmp").mkdir()
    proc = subprocess.Popen(
        [str(START)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for_port(port, proc)
        yield Front(
            proc,
            port,
            mgmt_port,
            app,
            app_server.server_address[1],
            tmp / "perlbal-tmp",
            media,
            media_port,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for server in servers:
            server.shutdown()


def test_proxies_to_the_app_and_offers_reproxying(front: Front) -> None:
    status, _, body = front.get("/")
    assert (status, body) == (200, b"hello from the app")
    assert "reproxy-file" in front.app.capabilities[-1]


def test_reproxied_file_comes_from_the_storage_node(front: Front) -> None:
    status, headers, body = front.get("/avatar")
    assert status == 200
    assert body == BLOB  # after skipping the dead first URL
    assert headers["content-type"] == "image/png"
    assert headers["content-length"] == str(len(BLOB))
    assert "x-reproxy-url" not in headers


def test_a_storage_node_that_never_answers_is_given_up_then_tried_last(front: Front) -> None:
    # Stock Perlbal waits on such a node until TCP gives up (minutes): ReproxyFailover
    # gives it up after 1 s and the request is served from the next URL.
    status, _, body = front.get("/gone-first", timeout=10)
    assert (status, body) == (200, BLOB)
    # For the next 30 s its URLs come last: no request waits for it again (a wait
    # would be the 1 s connect deadline, longer than this client's patience).
    for _ in range(3):
        status, _, body = front.get("/gone-first", timeout=0.9)
        assert (status, body) == (200, BLOB)


def test_reproxy_cache_answers_without_asking_the_app(front: Front) -> None:
    for _ in range(3):
        status, headers, body = front.get("/media/cached.png")
        assert (status, body, headers["content-type"]) == (200, BLOB, "image/png")
    assert front.app.requests["/media/cached.png"] == 1


def test_uploads_stream_to_the_app_and_nothing_is_written_to_disk(front: Front) -> None:
    # No buffer_uploads: Perlbal must not spool a body to disk before the app sees it
    # (there is no size cap in Perlbal 1.80: anyone could fill its disk). The app hears
    # the first part of a slow upload while the rest is still on its way.
    upload = BLOB * 3  # 900 KB: well over buffer_backend_connect (100 KB)

    def first_part_reached_the_app() -> None:
        deadline = time.monotonic() + 5
        while front.app.received["/stream"] < 500_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = front.app.received["/stream"]
        assert got >= 500_000, f"the app got {got} bytes while the client waited"
        assert not front.files_written()

    reply = front.post_raw(
        "/stream", len(upload), [upload[:600_000], upload[600_000:]], first_part_reached_the_app
    )
    assert reply.startswith(b"HTTP/1.0 200")
    assert reply.endswith(hashlib.sha256(upload).hexdigest().encode())
    assert front.app.received["/stream"] == len(upload)
    assert not front.files_written()


def test_an_oversized_upload_gets_the_apps_413_and_nothing_is_spooled(front: Front) -> None:
    upload = BLOB * 10  # 3 MB, over the app's limit: it drains the body and answers 413
    before = front.app.requests["/limited"]
    written: list[Path] = []

    def slowly() -> None:
        time.sleep(0.1)
        written.extend(front.files_written())

    parts = [upload[i : i + 500_000] for i in range(0, len(upload), 500_000)]
    reply = front.post_raw("/limited", len(upload), parts, slowly)
    assert reply.startswith(b"HTTP/1.0 413")
    assert reply.endswith(b"too large for the app")
    assert front.app.requests["/limited"] == before + 1
    assert front.app.received["/limited"] == len(upload)  # read by the app, not Perlbal's disk
    assert written == [] and not front.files_written()


def test_reuses_its_connection_to_the_app_and_opens_none_ahead(front: Front) -> None:
    # persist_backend: a cold avatar costs no connect (gunicorn gthread keeps it alive).
    opened, served = front.app.opened, sum(front.app.requests.values())
    for _ in range(5):
        assert front.get("/")[0] == 200
    assert sum(front.app.requests.values()) == served + 5
    assert front.app.opened - opened <= 1
    # One client at a time: one connection from each service's pool (site and media, both
    # to this one app server here), kept alive.
    assert front.app.open_now <= 2


def test_a_query_string_or_a_port_makes_no_new_cache_entry(front: Front) -> None:
    # MediaKey: under /media/ the query and Host's port are dropped before the cache.
    urls = ["/media/a.png", "/media/a.png?x=1", "/media/a.png?x=2&y", "/media/a.png?"]
    for url in urls:
        status, headers, body = front.get(url)
        assert (status, body, headers["content-type"]) == (200, BLOB, "image/png"), url
    assert front.get("/media/a.png", host="LOCALHOST:1234")[2] == BLOB
    assert front.app.requests["/media/a.png"] == 1
    assert front.app.hosts["/media/a.png"] == ["localhost"]
    assert not any("?" in path for path in front.app.requests if path.startswith("/media/"))


def test_other_urls_keep_their_query_string(front: Front) -> None:
    assert front.get("/?page=2")[0] == 200
    assert front.app.requests["/?page=2"] == 1


def test_management_console_shows_the_services(front: Front) -> None:
    site, media = front.manage("show service site"), front.manage("show service media")
    assert "role: reverse_proxy" in site and "role: reverse_proxy" in media
    assert f"127.0.0.1:{front.app_port}" in site and f"127.0.0.1:{front.app_port}" in media
    # The reproxy cache is the media service's: only stored files are cached.
    assert "cache size: " in media and "/10000" in media


def test_parses_headers_in_c(front: Front) -> None:
    # XS enable headers in perlbal.conf (Debian's libperlbal-xs-httpheaders-perl): the
    # tests above ran on the C parser, as the deployed front does.
    assert "headers: installed, enabled" in front.manage("xs")


def test_stored_files_go_to_the_media_tier_and_the_rest_to_the_site(tiers: Front) -> None:
    # MediaRoute: the media service (PERLBAL_MEDIA_BACKENDS) proxies what is under /media/.
    status, headers, body = tiers.get("/media/tier.png?v=1")
    assert (status, body, headers["content-type"]) == (200, BLOB, "image/png")
    assert tiers.media.requests["/media/tier.png"] == 1  # MediaKey still applies
    assert "reproxy-file" in tiers.media.capabilities[-1]
    assert (tiers.get("/?page=3")[0], tiers.get("/avatar")[2]) == (200, BLOB)
    assert tiers.app.requests["/?page=3"] == tiers.app.requests["/avatar"] == 1
    assert not any(path.startswith("/media/") for path in tiers.app.requests)
    assert not any(not path.startswith("/media/") for path in tiers.media.requests)
    # Its reproxy cache is the media service's.
    assert tiers.get("/media/tier.png")[2] == BLOB
    assert tiers.media.requests["/media/tier.png"] == 1


def test_one_kept_alive_connection_moves_between_the_tiers(tiers: Front) -> None:
    upload = b"x" * 5000
    conn = http.client.HTTPConnection("127.0.0.1", tiers.port, timeout=10)
    try:
        answers, sockets = [], set()
        for method, path, body in [
            ("GET", "/media/one.png", None),
            ("GET", "/", None),
            ("POST", "/form", upload),
            ("GET", "/media/two.png", None),
            ("GET", "/media/three.png", None),
            ("GET", "/?again", None),
        ]:
            conn.request(method, path, body=body, headers={"Host": "localhost"})
            response = conn.getresponse()
            answers.append((path, response.status, response.read()))
            sockets.add(id(conn.sock))
    finally:
        conn.close()
    hello, digest = b"hello from the app", hashlib.sha256(upload).hexdigest().encode()
    assert answers == [
        ("/media/one.png", 200, BLOB),
        ("/", 200, hello),
        ("/form", 200, digest),
        ("/media/two.png", 200, BLOB),
        ("/media/three.png", 200, BLOB),
        ("/?again", 200, hello),
    ]
    assert len(sockets) == 1  # one connection from start to end
    for path in ("/media/one.png", "/media/two.png", "/media/three.png"):
        assert (tiers.media.requests[path], tiers.app.requests[path]) == (1, 0), path
    for path in ("/", "/form", "/?again"):
        assert (tiers.app.requests[path], tiers.media.requests[path]) == (1, 0), path
    assert tiers.app.received["/form"] == len(upload)


def test_while_the_media_tier_is_down_the_site_answers_stored_files(lost_tier: Front) -> None:
    # Stock Perlbal keeps a request waiting for a server that refuses every connect until
    # the client's idle timeout (30 s): here the site's app servers answer it instead.
    paths = [f"/media/while-down-{i}.png" for i in range(6)]
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
        answers = list(pool.map(lambda path: lost_tier.get(path, timeout=5), paths))
    assert [(status, body) for status, _, body in answers] == [(200, BLOB)] * len(paths)
    assert [lost_tier.app.requests[path] for path in paths] == [1] * len(paths)
    assert lost_tier.get("/", timeout=5)[2] == b"hello from the app"

    # Once the tier answers again, stored files go back to it (Perlbal retries a server
    # a second after it failed).
    media = http.server.ThreadingHTTPServer(
        ("127.0.0.1", lost_tier.media_port), lost_tier.media.handler()
    )
    serve(media)
    try:
        deadline = time.monotonic() + 10
        while not lost_tier.media.requests:
            assert time.monotonic() < deadline, "the media tier was never used again"
            assert lost_tier.get(f"/media/back-{time.monotonic()}.png", timeout=5)[2] == BLOB
            time.sleep(0.2)
        before = sum(lost_tier.app.requests.values())
        for i in range(3):
            assert lost_tier.get(f"/media/after-{i}.png", timeout=5)[2] == BLOB
        assert sum(lost_tier.app.requests.values()) == before
    finally:
        media.shutdown()


def test_a_media_tier_that_is_gone_is_given_up_after_a_second(gone_tier: Front) -> None:
    # A stopped container's address answers nothing: Perlbal alone would hold the request
    # until the client's idle timeout (30 s). MediaRoute fails the connect after 1 s.
    paths = [f"/media/gone-{i}.png" for i in range(4)]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
        answers = list(pool.map(lambda path: gone_tier.get(path, timeout=10), paths))
    assert [(status, body) for status, _, body in answers] == [(200, BLOB)] * len(paths)
    assert time.monotonic() - started < 5
    assert [gone_tier.app.requests[path] for path in paths] == [1] * len(paths)


def test_on_sigterm_it_serves_on_for_the_delay_closing_each_connection_it_answers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """SHUTDOWN_DELAY: a kept-alive client is told in-band (Connection: close) to go
    elsewhere, new connections are still answered; then Perlbal stops and exits 0."""
    with contextlib.ExitStack() as stack:
        fronts = _front(tmp_path_factory, stack, media_tier="same", SHUTDOWN_DELAY="3")
        front = next(fronts)
        stack.callback(fronts.close)
        kept = http.client.HTTPConnection("127.0.0.1", front.port, timeout=10)
        kept.request("GET", "/")
        response = kept.getresponse()
        assert (response.status, response.read()) == (200, b"hello from the app")
        assert response.getheader("Connection") == "keep-alive"
        front.proc.terminate()
        time.sleep(0.5)
        kept.request("GET", "/")  # the kept-alive connection, during the delay
        response = kept.getresponse()
        assert (response.status, response.read()) == (200, b"hello from the app")
        assert response.getheader("Connection") == "close"
        status, headers, _ = front.get("/")  # a new connection, during the delay
        assert (status, headers["connection"]) == (200, "close")
        assert front.proc.wait(15) == 0
        assert "stopping in 3s" in front.proc.communicate()[0]
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", front.port), timeout=1).close()


def test_start_refuses_a_bad_shutdown_delay(tmp_path: Path) -> None:
    env = own_environ(SHUTDOWN_DELAY="soon", PERLBAL_NODEFILE=str(tmp_path / "nodes"))
    result = subprocess.run([str(START)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "SHUTDOWN_DELAY: 'soon' is not a whole number of seconds" in result.stderr


def test_start_refuses_a_media_backend_it_cannot_resolve(tmp_path: Path) -> None:
    env = own_environ(
        PERLBAL_BACKENDS="localhost:8000",
        PERLBAL_MEDIA_BACKENDS="no-such-media.invalid:8001",
        PERLBAL_NODEFILE=str(tmp_path / "nodes"),
        WAIT_TIMEOUT="3",
    )
    result = subprocess.run([str(START)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert (
        "PERLBAL_MEDIA_BACKENDS: cannot resolve 'no-such-media.invalid'; waiting" in result.stderr
    )
    assert (
        "PERLBAL_MEDIA_BACKENDS: cannot resolve 'no-such-media.invalid' (waited 3s)"
        in result.stderr
    )


def test_start_refuses_a_backend_it_cannot_resolve(tmp_path: Path) -> None:
    env = own_environ(
        PERLBAL_BACKENDS="no-such-host.invalid:8000",
        PERLBAL_NODEFILE=str(tmp_path / "nodes"),
        WAIT_TIMEOUT="0",
    )
    result = subprocess.run([str(START)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "cannot resolve 'no-such-host.invalid' (waited 0s)" in result.stderr


def resolve_from(hosts: Path, env: dict[str, str]) -> None:
    """A getent first on ``env``'s PATH that answers ``ahostsv4`` from the ``hosts`` file."""
    resolver = hosts.parent / "getent"
    resolver.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = ahostsv4 ] && grep " $2$" {hosts} |\n'
        '    while read ip _; do echo "$ip STREAM $2"; done\n'
    )
    resolver.chmod(0o755)
    env["PATH"] = f"{hosts.parent}:{env['PATH']}"


def test_start_writes_every_address_of_a_name_and_follows_it(tmp_path: Path) -> None:
    """A name with several addresses (a swarm service's tasks.NAME) is that many backends,
    and the pool's file follows the name while Perlbal runs."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 app.test\n127.0.0.2 app.test\n")
    nodes = tmp_path / "nodes"
    env = own_environ(
        PERLBAL_BACKENDS="app.test:8000",
        PERLBAL_NODEFILE=str(nodes),
        PERLBAL_RESOLVE_INTERVAL="0.2",
        PERLBAL_LISTEN=f"127.0.0.1:{free_port()}",
        PERLBAL_MGMT_LISTEN=f"127.0.0.1:{free_port()}",
    )
    resolve_from(hosts, env)
    proc = subprocess.Popen([str(START)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not (nodes.exists() and nodes.read_text() == "127.0.0.1:8000\n127.0.0.2:8000\n"):
            assert time.monotonic() < deadline, nodes.read_text() if nodes.exists() else "none"
            time.sleep(0.1)
        hosts.write_text("127.0.0.2 app.test\n127.0.0.3 app.test\n")  # one went, one came
        while nodes.read_text() != "127.0.0.2:8000\n127.0.0.3:8000\n":
            assert time.monotonic() < deadline, nodes.read_text()
            time.sleep(0.1)
        proc.terminate()  # a graceful shutdown: exits once nothing is under way
        assert proc.wait(15) == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_server_that_leaves_the_pool_gets_no_more_requests_on_kept_alive_connections(
    tmp_path: Path,
) -> None:
    """A task leaving DNS (an update) leaves Perlbal's use at once, kept-alive connections
    included: Perlbal alone would go on sending them requests while the server shuts down."""
    served_on: list[str] = []  # the address each request came in on

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # kept alive, as gunicorn and granian keep them

        def do_GET(self) -> None:
            served_on.append(self.connection.getsockname()[0])
            time.sleep(0.05)  # long enough for concurrent requests to need more connections
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    serve(server)
    app_port = server.server_address[1]
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 app.test\n127.0.0.2 app.test\n")
    port, nodes = free_port(), tmp_path / "nodes"
    env = own_environ(
        PERLBAL_BACKENDS=f"app.test:{app_port}",
        PERLBAL_NODEFILE=str(nodes),
        PERLBAL_RESOLVE_INTERVAL="0.2",
        PERLBAL_LISTEN=f"127.0.0.1:{port}",
        PERLBAL_MGMT_LISTEN=f"127.0.0.1:{free_port()}",
        PERLBAL_PLUGINS="none",
    )
    resolve_from(hosts, env)
    proc = subprocess.Popen([str(START)], env=env, stderr=subprocess.PIPE, text=True)

    def get() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"ok"
        conn.close()

    try:
        wait_for_port(port, proc)
        deadline = time.monotonic() + 20
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            while set(served_on) != {"127.0.0.1", "127.0.0.2"}:  # kept-alive ones to each
                assert time.monotonic() < deadline, served_on
                list(pool.map(lambda _: get(), range(8)))
        hosts.write_text("127.0.0.2 app.test\n")  # 127.0.0.1 leaves DNS
        while nodes.read_text() != f"127.0.0.2:{app_port}\n":
            assert time.monotonic() < deadline, nodes.read_text()
            time.sleep(0.1)
        time.sleep(0.5)  # the console's turn
        del served_on[:]
        for _ in range(20):
            get()
        assert served_on == ["127.0.0.2"] * 20
    finally:
        proc.terminate()
        proc.wait(15)
        server.shutdown()


MEDIA_ROUTE_CONTAINED = r"""
use strict;
use warnings;
use Perlbal;

my $out = sub { print STDERR "perlbal: @_\n" };
sub run { Perlbal::run_manage_command($_[0], $out) or die "refused: $_[0]\n" }
my @methods = qw(add_pending_connect note_bad_backend_connect spawn_backends);
my %stock = map { no strict 'refs'; ($_ => \&{"Perlbal::Service::$_"}) } @methods;

run("LOAD MediaRoute");
run("CREATE POOL p");
for my $name (qw(site media other)) {
    run("CREATE SERVICE $name");
    run("SET $name.role = reverse_proxy");
    run("SET $name.pool = p");
    run("SET $name.plugins = MediaRoute");
}
my ($site, $media, $other) = map { Perlbal->service($_) } qw(site media other);
print "version $Perlbal::VERSION\n";
for (@methods) {
    no strict 'refs';
    print "changed $_\n" if \&{"Perlbal::Service::$_"} != $stock{$_};
}
print "site ", ref($site), "\nother ", ref($other), "\nmedia ", ref($media), "\n";
print "media isa ", ($media->isa('Perlbal::Service') ? 1 : 0), "\n";
my $own = $media->can('add_pending_connect') != $stock{add_pending_connect};
print "media own ", ($own ? 1 : 0), "\n";
run("SET media.plugins = none");
print "unloaded ", ref($media), "\n";
"""


def test_media_route_changes_no_method_of_perlbal_itself() -> None:
    # Against the Perlbal the images install (Debian 12's): only the media service is
    # blessed into MediaRoute's subclass; Perlbal::Service and the other services keep
    # Perlbal's methods.
    result = subprocess.run(
        ["perl", f"-I{cf.ROOT / 'perlbal' / 'plugins'}", "-e", MEDIA_ROUTE_CONTAINED],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "version 1.80",
        "site Perlbal::Service",
        "other Perlbal::Service",
        "media Perlbal::Plugin::MediaRoute::Service",
        "media isa 1",
        "media own 1",
        "unloaded Perlbal::Service",
    ]
