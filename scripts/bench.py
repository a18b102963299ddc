#!/usr/bin/env python3
"""Serving speed of one avatar, five ways, measured side by side with wrk.

### Usage: .venv/bin/python scripts/bench.py [--seconds S] [--rounds N] [--connections C]

Starts the native stack on free ports (scripts/devstack, as ``make dev``), uploads a
20 KB and a 2 MB avatar through the site, waits for their 3 copies, then GETs them with
Debian's ``wrk`` (native, so the load generator is not what tops out):

  A   straight from a storage node (the floor: one Perlbal serving a file)
  B   the avatar URL through the front Perlbal, reproxy cache warm (no Django, no tracker)
  C   the same URL straight to gunicorn (Django streams the bytes)
  D   through Perlbal with its reproxy cache off: Perlbal -> the media tier (the app under
      granian) -> memcached -> X-REPROXY-URL, what every avatar not in the cache (and a
      gallery's first view) costs
  E   D without the media tier: the front's media service sent to gunicorn's pool instead
      (``SET media.pool = app_servers`` on the management console), what the tier earns
  A2, B2  A and B with the 2 MB file

Every body is checked once before the runs; wrk counts any other status as an error.
Then, for the memory figure, it fills the front's reproxy cache with ``--cache-entries``
entries (the small avatar under as many host names) and prints the front Perlbal's RSS
before and after.
The rounds are interleaved (A B C D A2 B2, then again), so a machine that gets busier
half-way slows every path alike; the table shows each path's median over the rounds,
and the last line is ``ratios: hot=B/A cold=D/A``. Everything runs on loopback, on the
same cores: compare the rows with each other, not with another machine. The report
also replaces its section of docs/bench.md (scripts/benchdoc.py) unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import benchdoc

TITLE = "Serving one avatar, five ways (scripts/bench.py)"
SMALL, LARGE = 20 * 1024, 2 * 1024 * 1024
REPROXY_CACHE_SIZE = 10_000
CACHE_SERVICE = "media"  # the front's service for /media/, which holds the reproxy cache
MEDIA_POOL, SITE_POOL = "media_servers", "app_servers"  # perlbal/perlbal.conf
WARM_UP_SECONDS = 1
BENCH_HOSTS = ".bench.localhost"  # allowed in the bench's stack: e<N>.bench.localhost
# wrk's summary as one JSON line (a done() hook costs nothing per request).
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    url: str
    body: bytes
    baseline: str  # the row this one is compared with
    cache_size: int | None = None  # Perlbal's reproxy cache size for this run
    pool: str = MEDIA_POOL  # the pool of the front's media service for this run


@dataclass
class Runs:
    target: Target
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def add(self, summary: dict[str, int]) -> None:
        self.rps.append(summary["requests"] / (summary["duration_us"] / 1e6))
        self.p50_ms.append(summary["p50_us"] / 1000)
        self.p99_ms.append(summary["p99_us"] / 1000)
        self.errors += summary["errors"]

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps)


def wrk(url: str, seconds: float, connections: int, script: Path) -> dict[str, int]:
    """One wrk run (2 threads, keep-alive connections): its summary."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed on {url}: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def fetch(url: str) -> bytes:
    """One GET, as a browser sends it (no reproxy capability, no query)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status}")
        return body
    finally:
        conn.close()


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


def avatar(size: int, seed: int) -> bytes:
    """A PNG of about ``size`` bytes (random pixels do not compress)."""
    import io
    import random

    from PIL import Image

    side = max(8, int((size / 3) ** 0.5))
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "PNG")
    return out.getvalue()


def prepare(stack, size: int) -> tuple[str, str, bytes]:
    """Sign up, upload an avatar, wait for its 3 copies: (media path, a node URL, bytes)."""
    from django_mogilefs.client import MogileFSClient
    from siteclient import SiteClient, key_of

    data = avatar(size, seed=size)
    client = SiteClient(stack.site_url)
    username = f"bench{os.getpid()}x{size}"
    if client.sign_up(username, "bench-" + username * 2).status_code != 302:
        raise RuntimeError("sign-up failed")
    response = client.upload(data, "bench.png", "image/png")
    if response.status_code != 302:
        raise RuntimeError(f"upload of {len(data)} bytes failed: {response.status_code}")
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


def targets(stack) -> list[Target]:
    small_path, small_node, small = prepare(stack, SMALL)
    large_path, large_node, large = prepare(stack, LARGE)
    front, app = stack.site_url, stack.app_url
    return [
        Target("A", "storage node, direct", small_node, small, "A"),
        Target("B", "Perlbal, reproxy cache warm", front + small_path, small, "A", 10_000),
        Target("C", "gunicorn direct (Django streams)", app + small_path, small, "A"),
        Target(
            "D", "Perlbal -> media tier -> reproxy (no cache)", front + small_path, small, "A", 0
        ),
        Target(
            "E", "D without the media tier (gunicorn)", front + small_path, small, "A", 0, SITE_POOL
        ),
        Target("A2", "A with the 2 MB file", large_node, large, "A2"),
        Target("B2", "B with the 2 MB file", front + large_path, large, "A2", 10_000),
    ]


def cache_command(size: int) -> str:
    return f"SET {CACHE_SERVICE}.reproxy_cache_maxsize = {size}"


def cache_size(stack) -> int:
    """Entries in the front's reproxy cache (``cache size: N/MAX`` in ``show service``)."""
    for line in perlbal_command(stack.mgmt_address, f"show service {CACHE_SERVICE}").splitlines():
        if "cache size:" in line:
            return int(line.split("cache size:")[1].split("/")[0])
    raise RuntimeError(f"Perlbal's show service {CACHE_SERVICE} gave no cache size")


def fill_cache(stack, path: str, entries: int) -> tuple[int, int, int]:
    """GET ``path`` through the front under ``entries`` host names: its RSS (KiB) before
    and after, and the cache entries added.

    Perlbal keys its reproxy cache on ``Host|URI``, so each name is an entry the size of
    an avatar's (the same headers and URLs), without storing that many files.
    """
    perlbal_command(stack.mgmt_address, cache_command(REPROXY_CACHE_SIZE))
    pid, before_entries = stack.front_pid(), cache_size(stack)
    before = rss_kib(pid)
    parts = urlsplit(stack.site_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        for i in range(entries):
            conn.request("GET", path, headers={"Host": f"e{i}{BENCH_HOSTS}"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path} as e{i}{BENCH_HOSTS}: {response.status}")
    finally:
        conn.close()
    return before, rss_kib(pid), cache_size(stack) - before_entries


# -- the run --------------------------------------------------------------------------------


def measure(stack, args: argparse.Namespace, script: Path) -> tuple[list[Runs], list[int]]:
    runs = [Runs(t) for t in targets(stack)]
    for r in runs:
        if fetch(r.target.url) != r.target.body:
            raise RuntimeError(f"({r.target.name}) {r.target.url} does not answer the file")
    pid = stack.front_pid()
    rss = [rss_kib(pid)]
    for round_no in range(1, args.rounds + 1):
        for r in runs:
            t = r.target
            if t.cache_size is not None:
                perlbal_command(stack.mgmt_address, cache_command(t.cache_size))
            perlbal_command(stack.mgmt_address, f"SET {CACHE_SERVICE}.pool = {t.pool}")
            print(f"bench: round {round_no}: ({t.name}) {t.label}", file=sys.stderr, flush=True)
            wrk(t.url, WARM_UP_SECONDS, args.connections, script)
            r.add(wrk(t.url, args.seconds, args.connections, script))
        rss.append(rss_kib(pid))
    return runs, rss


def report(
    runs: Sequence[Runs],
    rss: Sequence[int],
    cache: tuple[int, int, int] | None,
    args: argparse.Namespace,
) -> str:
    by_name = {r.target.name: r for r in runs}
    lines = [
        f"GET of one avatar, wrk -t2 -c{args.connections}, {args.seconds:g} s per run, "
        f"{args.rounds} interleaved rounds, medians ({os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} at the end, wrk on the same machine)",
        "",
        f"{'path':4}{'':44}{'req/s':>9}{'vs A':>7}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}",
    ]
    for r in runs:
        t = r.target
        ratio = r.median_rps / by_name[t.baseline].median_rps
        lines.append(
            f"{t.name:4}{t.label:44}{r.median_rps:9.0f}{ratio:7.2f}"
            f"{statistics.median(r.p50_ms):9.2f}{statistics.median(r.p99_ms):9.2f}{r.errors:8d}"
        )
    if "E" in by_name:
        tier = by_name["D"].median_rps / by_name["E"].median_rps
        lines.append(f"The media tier: D is {tier:.2f} times E (the same requests to gunicorn)")
    rounds = ", ".join(f"{kib / 1024:.0f}" for kib in rss)
    lines += ["", f"Front Perlbal RSS (MB) before the runs and after each round: {rounds}"]
    if cache is not None:
        before, after, added = cache
        per_entry = (after - before) / added if added else 0.0
        lines.append(
            f"Front Perlbal RSS with {added} more reproxy cache entries: {before / 1024:.0f} -> "
            f"{after / 1024:.0f} MB (+{(after - before) / 1024:.1f} MB, {per_entry:.1f} KB each)"
        )
    hot = by_name["B"].median_rps / by_name["A"].median_rps
    cold = by_name["D"].median_rps / by_name["A"].median_rps
    lines.append(f"ratios: hot={hot:.2f} cold={cold:.2f}")
    return "\n".join(lines)


@contextlib.contextmanager
def native_stack(var_dir: Path, **config) -> Iterator:
    """A fresh native stack (scripts/devstack, as ``make dev``) on free ports, stopped after;
    ``config``: StackConfig's fields. Raises RuntimeError if it cannot start."""
    from devstack import DevStack, StackConfig, StackError

    try:
        stack = DevStack(StackConfig.isolated(var_dir, **config), out=sys.stderr).start()
    except StackError as exc:
        raise RuntimeError(str(exc)) from exc
    try:
        yield stack
    finally:
        stack.stop()


def run(args: argparse.Namespace) -> int:
    if not shutil.which("wrk"):
        print("bench: error: needs Debian's wrk package (apt-get install wrk)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        script = Path(tmp) / "summary.lua"
        script.write_text(WRK_SCRIPT)
        cache = None
        try:
            with native_stack(
                Path(tmp) / "stack",
                reproxy_cache_maxsize=REPROXY_CACHE_SIZE,
                extra_env={"DJANGO_ALLOWED_HOSTS": f"127.0.0.1,localhost,{BENCH_HOSTS}"},
            ) as stack:
                runs, rss = measure(stack, args, script)
                if args.cache_entries:
                    hot = next(r.target for r in runs if r.target.name == "B")
                    cache = fill_cache(stack, urlsplit(hot.url).path, args.cache_entries)
        except RuntimeError as exc:
            print(f"bench: error: {exc}", file=sys.stderr)
            return 1
    text = report(runs, rss, cache, args)
    print(text)
    if args.doc:
        print(f"bench: written to {benchdoc.write('bench', TITLE, text)}", file=sys.stderr)
    return 0 if not any(r.errors for r in runs) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per run (%(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved (%(default)s)")
    parser.add_argument("--connections", type=int, default=16, help="(%(default)s)")
    parser.add_argument(
        "--cache-entries",
        type=int,
        default=REPROXY_CACHE_SIZE - 2,
        help="avatars put in the reproxy cache for the memory figure, 0 for none (%(default)s)",
    )
    parser.add_argument(
        "--no-doc", dest="doc", action="store_false", help="do not write docs/bench.md"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.connections < 2:
        parser.error("--seconds, --rounds must be positive and --connections at least 2")
    if not 0 <= args.cache_entries <= REPROXY_CACHE_SIZE - 2:
        parser.error(f"--cache-entries must be from 0 to {REPROXY_CACHE_SIZE - 2}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
