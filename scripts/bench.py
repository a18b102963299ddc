#!/usr/bin/env python3
"""What Perlbal's reproxy buys: GET throughput and latency of one avatar, four ways.

### Usage: .venv/bin/python scripts/bench.py [--requests N] [--seconds S] [--connections C]

Starts the native stack on free ports (scripts/devstack, the same as ``make dev``),
uploads one 20 KB avatar through the site, waits for its 3 copies, then GETs it:

  (a) node      straight from a storage node (the floor: one Perlbal serving a file)
  (b) reproxy   Perlbal -> Django -> X-REPROXY-URL, the paths cached in memcached
  (c) cached    the same with Perlbal's reproxy cache (X-REPROXY-CACHE-FOR honoured):
                Django is asked once, then Perlbal goes straight to the storage node
  (d) stream    Django (gunicorn) streaming the bytes itself, no Perlbal

and (b) and (c) again with perlbal/plugins' NoDelay loaded (TCP_NODELAY on client
sockets): stock Perlbal 1.80 holds a reproxied body back for the client's delayed
ACK (40 ms) on every kept-alive request but the first.

Each run is bounded by a request count and a time limit; everything is on loopback.
The load generator is Python (processes x threads, http.client keep-alive) on the same
machine, so the figures compare the four paths with each other; they are not the
absolute capacity of any of them.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
for extra in ("scripts", "app", "tests"):
    if str(ROOT / extra) not in sys.path:
        sys.path.insert(0, str(ROOT / extra))

AVATAR_BYTES = 20 * 1024
REPROXY_CACHE_SIZE = 10_000


# -- the load generator ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    url: str
    expected: bytes  # the body every answer must have


@dataclass
class Result:
    target: Target
    latencies: list[float]  # seconds, sorted
    errors: int
    elapsed: float
    perlbal_rss: int = 0  # KiB, after the run

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, round(p / 100 * (len(self.latencies) - 1)))
        return self.latencies[index]


def _client_loop(
    url: str, expected: bytes, quota: list[int], lock: threading.Lock, deadline: float
) -> tuple[list[float], int]:
    """One keep-alive connection: GET until the shared quota is used up or time is over."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    latencies: list[float] = []
    errors = 0
    while time.monotonic() < deadline:
        with lock:
            if quota[0] <= 0:
                break
            quota[0] -= 1
        started = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            ok = response.status == 200 and body == expected
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            errors += 1
    conn.close()
    return latencies, errors


def _process_main(args: tuple) -> tuple[list[float], int]:
    url, expected, threads, quota, seconds = args
    lock = threading.Lock()
    shared = [quota]
    deadline = time.monotonic() + seconds
    results: list[tuple[list[float], int]] = []

    def run() -> None:
        results.append(_client_loop(url, expected, shared, lock, deadline))

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return [x for lat, _ in results for x in lat], sum(e for _, e in results)


def load(target: Target, requests: int, connections: int, seconds: float) -> Result:
    """``requests`` GETs over ``connections`` keep-alive connections, at most ``seconds``."""
    procs = max(1, min(os.cpu_count() or 1, connections))
    threads = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    quotas = [requests * t // connections for t in threads]
    quotas[0] += requests - sum(quotas)
    jobs = [
        (target.url, target.expected, t, q, seconds) for t, q in zip(threads, quotas, strict=True)
    ]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_process_main, jobs)
    elapsed = time.perf_counter() - started
    latencies = sorted(x for lat, _ in parts for x in lat)
    return Result(target, latencies, sum(e for _, e in parts), elapsed)


# -- the stack ----------------------------------------------------------------------------


def perlbal_command(address: tuple[str, int], command: str) -> str:
    """One command on Perlbal's management console; its answer up to the final line."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(command.encode() + b"\r\n")
        answer = b""
        while not answer.rstrip().endswith((b"OK", b".")) and b"ERROR" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    text = answer.decode(errors="replace").strip()
    if "ERROR" in text:
        raise RuntimeError(f"Perlbal refused {command!r}: {text}")
    return text


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def avatar(size: int) -> bytes:
    """A PNG of about ``size`` bytes (random pixels do not compress)."""
    import io
    import random

    from PIL import Image

    side = max(8, int((size / 3) ** 0.5))
    pixels = random.Random(20).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "PNG")
    return out.getvalue()


def prepare(stack, size: int) -> tuple[str, str, bytes]:
    """Sign up, upload the avatar, wait for its 3 copies: (media path, a node URL, bytes)."""
    from django_mogilefs.client import MogileFSClient
    from e2e.siteclient import SiteClient, key_of

    data = avatar(size)
    client = SiteClient(stack.site_url)
    username = f"bench{os.getpid()}"
    if client.sign_up(username, "bench-" + username * 2).status_code != 302:
        raise RuntimeError("sign-up failed")
    response = client.upload(data, "bench.png", "image/png")
    if response.status_code != 302:
        raise RuntimeError(f"upload failed: {response.status_code}")
    links = client.avatar_links(username)
    key = key_of(links.image_url, "/media/")
    mogile = MogileFSClient(stack.trackers, stack.domain)
    try:
        deadline = time.monotonic() + 60
        while mogile.file_info(key).devcount < 3:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{key} did not reach 3 copies in 60 s")
            time.sleep(0.25)
        node_url = mogile.get_paths(key, pathcount=3)[0]
    finally:
        mogile.close()
    return links.image_url, node_url, data


def report(results: Sequence[Result], rss: tuple[int, int], args: argparse.Namespace) -> None:
    base = results[0].rps
    print(
        f"\nGET of one {len(results[0].target.expected) / 1024:.1f} KB avatar, "
        f"{args.connections} keep-alive connections, up to {args.requests} requests "
        f"or {args.seconds:g} s per run ({os.cpu_count()} CPUs, client on the same machine)\n"
    )
    print(
        f"{'':5}{'path':50}{'req/s':>9}{'vs (a)':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'Perlbal RSS':>13}"
    )
    for r in results:
        print(
            f"{'(' + r.target.name + ')':5}{r.target.label:50}{r.rps:9.0f}{r.rps / base:8.2f}"
            f"{r.percentile(50) * 1000:9.2f}{r.percentile(99) * 1000:9.2f}{r.errors:8d}"
            f"{r.perlbal_rss / 1024:10.1f} MB"
        )
    before, after = rss
    print(
        f"\nFront Perlbal RSS: {before / 1024:.1f} MB before the runs, {after / 1024:.1f} MB after."
    )


def run(args: argparse.Namespace) -> int:
    from devstack import DevStack, MissingPackages, StackConfig, StackError

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config = StackConfig.isolated(Path(tmp), reproxy_cache_maxsize=REPROXY_CACHE_SIZE)
        try:
            stack = DevStack(config, out=sys.stderr).start()
        except (StackError, MissingPackages) as exc:
            print(f"bench: error: {exc}", file=sys.stderr)
            return 1
        try:
            media_path, node_url, data = prepare(stack, args.size)
            front_pid = stack.front_pid()
            front = stack.site_url + media_path
            targets = [
                Target("a", "storage node, direct", node_url, data),
                Target("b", "Perlbal -> Django (paths cached) -> reproxy", front, data),
                Target("c", "(b) + Perlbal reproxy cache", front, data),
                Target(
                    "d", "Django streams the bytes, no Perlbal", stack.app_url + media_path, data
                ),
                Target("b+", "(b) + TCP_NODELAY (plugin NoDelay)", front, data),
                Target("c+", "(c) + TCP_NODELAY (plugin NoDelay)", front, data),
            ]
            rss_before = rss_kib(front_pid)
            results = []
            # perlbal.conf loads NoDelay; (a)-(d) measure stock Perlbal 1.80 without it.
            perlbal_command(stack.mgmt_address, "SET site.plugins = none")
            for target in targets:
                if target.name == "b+":
                    perlbal_command(stack.mgmt_address, "SET site.plugins = NoDelay")
                size = REPROXY_CACHE_SIZE if target.name.startswith("c") else 0
                perlbal_command(stack.mgmt_address, f"SET site.reproxy_cache_maxsize = {size}")
                load(target, min(200, args.requests), args.connections, args.seconds)  # warm-up
                print(f"bench: ({target.name}) {target.label}...", file=sys.stderr, flush=True)
                result = load(target, args.requests, args.connections, args.seconds)
                result.perlbal_rss = rss_kib(front_pid)
                results.append(result)
            rss_after = rss_kib(front_pid)
        finally:
            stack.stop()
    report(results, (rss_before, rss_after), args)
    return 0 if all(r.latencies for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="per run (%(default)s)")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="time limit per run (%(default)s)"
    )
    parser.add_argument("--connections", type=int, default=16, help="(%(default)s)")
    parser.add_argument("--size", type=int, default=AVATAR_BYTES, help="avatar bytes (%(default)s)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.connections < 1 or args.seconds <= 0:
        parser.error("--requests, --connections and --seconds must be positive")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
