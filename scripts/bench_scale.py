#!/usr/bin/env python3
"""What each operation costs as the cluster fills: 1k, 10k, 100k files, side by side.

### Usage: .venv/bin/python scripts/bench_scale.py [--steps 1000,10000,100000] [--no-doc]

Starts the native stack (scripts/bench.py's ``native_stack``: fake trackers on one SQLite
database, storage nodes, the site) and fills its domain step by step; ``BENCH_SCALE_STEPS``
(or ``--steps``) gives the steps, ``1000,10000,100000`` by default. At each step it first
stores tiny files through the package's client, in parallel (the fill, not measured), until
the domain holds the step's count once the step's measured writes are added, waits until
the trackers are idle again (they check the copies of every new file, as mogilefsd does),
then measures:

  store     p50/p99 of sequential ``MogileFSClient.store`` calls (class ``thumb``)
  upload    p50 of the site's avatar upload POST (sign-up first; through the front Perlbal)
  trk ms    the trackers' CPU per tracker request while storing, uploading, viewing, rendering
  view/s    first views: every original and thumbnail uploaded at this step, and 150
            files of each class (avatar, thumb) saved through the storage as the site saves
            them, each once, through the front (8 at a time), and the tracker requests each
            cost
  gallery, status   median render time of /gallery/ and the staff /status/ page, and the
            tracker requests per render
  copy      files/s of ``manage.py mogilefs_copy`` out of MogileFS (the same 300 files)
  ls top    ``storage.listdir("")`` (time, tracker requests)
  ls all    every folder listed with ``storage.listdir``, from the top (every key read)
  idle      the trackers' CPU (% of a core, the busier one) and RSS (MB, the larger one)
            over 10 s of nothing, once the step's replication is done

Tracker requests are the trackers' own count (``!stats``' ``queries``), so they include
what the site asked. The last line gives each figure's growth from the first step to the
last, as a cost (a time's ratio last/first, a rate's first/last): 1.0x is flat, and a full
listing (``ls_all``) is linear when it grows as the files do.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.util
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import benchdoc
from bench import avatar, fetch, native_stack, rss_kib
from compose_yaml import ROOT

TITLE = "Costs as the cluster fills (scripts/bench_scale.py)"
DEFAULT_STEPS = (1_000, 10_000, 100_000)
STORES = 100  # measured stores per step
AVATARS = 80  # uploads through the site per step (each also stores a thumbnail)
VIEWS = 150  # files of each class stored per step for first views (with the uploads')
COPY_FILES = 300  # stored once, copied out at every step
RENDERS = 5
VIEW_THREADS = 8
IDLE_SECONDS = 10.0
SETTLED_PCT = 5.0
FILL_PROCESSES, FILL_THREADS = 2, 8
FILL_CLASS = "thumb"  # one copy: the fill costs no replication
TINY = b"scale bench file\n"


# -- the trackers, seen from outside ---------------------------------------------------------


class Trackers:
    """The stack's fake trackers: their request counts (``!stats``), CPU time and RSS."""

    def __init__(self, stack) -> None:
        self.addresses = [tuple(t.rsplit(":", 1)) for t in stack.trackers]
        self.pids = [stack.info(name)["pid"] for name in ("mogilefsd", "mogilefsd2")]

    def queries(self) -> int:
        total = 0
        for host, port in self.addresses:
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(b"!stats\r\n")
                answer = b""
                while not answer.endswith(b".\r\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
            for line in answer.decode().splitlines():
                if line.startswith("queries "):
                    total += int(line.split()[1])
        return total

    def cpu_seconds(self) -> list[float]:
        """User + system time of each tracker process (all its threads)."""
        tick = os.sysconf("SC_CLK_TCK")
        out = []
        for pid in self.pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / tick)
        return out

    def rss_mb(self) -> list[float]:
        return [rss_kib(pid) / 1024 for pid in self.pids]


@dataclass
class Step:
    files: int
    store_ms: list[float] = field(default_factory=list)
    upload_ms: list[float] = field(default_factory=list)
    tracker_cpu_s: float = 0.0
    tracker_queries: int = 0
    view_rps: float = 0.0
    view_calls: float = 0.0
    gallery_ms: float = 0.0
    gallery_calls: float = 0.0
    status_ms: float = 0.0
    status_calls: float = 0.0
    copy_fps: float = 0.0
    ls_top_ms: float = 0.0
    ls_top_calls: int = 0
    ls_all_s: float = 0.0
    ls_all_keys: int = 0
    idle_cpu_pct: float = 0.0
    idle_rss_mb: float = 0.0
    fill_s: float = 0.0
    settle_s: float = 0.0

    @property
    def tracker_ms(self) -> float:
        return 1000 * self.tracker_cpu_s / max(self.tracker_queries, 1)


def percentile(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class Meter:
    """Tracker requests and CPU seconds over the operations measured so far."""

    def __init__(self, trackers: Trackers) -> None:
        self.trackers, self.queries, self.cpu = trackers, 0, 0.0

    @contextlib.contextmanager
    def measuring(self) -> Iterator[list[int]]:
        """Adds to the totals; the list it gives gets this block's request count."""
        counted: list[int] = []
        queries, cpu = self.trackers.queries(), sum(self.trackers.cpu_seconds())
        yield counted
        cpu_after, queries_after = sum(self.trackers.cpu_seconds()), self.trackers.queries()
        self.cpu += cpu_after - cpu
        self.queries += queries_after - queries
        counted.append(queries_after - queries)


# -- filling -----------------------------------------------------------------------------------


def fill_key(n: int) -> str:
    return f"fill/{n // 1000:04d}/{n % 1000:03d}"


def _store_range(trackers: Sequence[str], domain: str, keys: Sequence[tuple[str, str]]) -> int:
    """One fill process: ``(key, class)`` stored by FILL_THREADS threads, one client each."""
    from django_mogilefs.client import MogileFSClient

    local = threading.local()

    def store(item: tuple[str, str]) -> None:
        if not hasattr(local, "client"):
            local.client = MogileFSClient(trackers, domain)
        local.client.store(item[0], io.BytesIO(TINY), cls=item[1])

    with concurrent.futures.ThreadPoolExecutor(FILL_THREADS) as pool:
        for _ in pool.map(store, keys):
            pass
    return len(keys)


def fill(stack, keys: Sequence[tuple[str, str]]) -> None:
    """Store tiny files, ``(key, class)``, as fast as the stack takes them."""
    if not keys:
        return
    chunks = [keys[i::FILL_PROCESSES] for i in range(FILL_PROCESSES)]
    with concurrent.futures.ProcessPoolExecutor(FILL_PROCESSES) as pool:
        futures = [pool.submit(_store_range, stack.trackers, stack.domain, c) for c in chunks]
        for future in futures:
            future.result()


# -- the measured operations -------------------------------------------------------------------


def timed(call: Callable[[], object]) -> float:
    """``call()``'s wall time in ms."""
    start = time.perf_counter()
    call()
    return 1000 * (time.perf_counter() - start)


def store_times(client, step: int) -> list[float]:
    return [
        timed(lambda n=n: client.store(f"probe/{step}/{n:03d}", io.BytesIO(TINY), cls=FILL_CLASS))
        for n in range(STORES)
    ]


def upload_avatars(stack, step: int) -> tuple[list[float], list[str], list[str]]:
    """AVATARS sign-ups and uploads: the POSTs' times, the media URLs and the avatar keys."""
    from siteclient import SiteClient, key_of

    times, urls, keys = [], [], []
    for n in range(AVATARS):
        client, username = SiteClient(stack.site_url), f"s{step}u{n}"
        if client.sign_up(username, f"scale-{username}-pw").status_code != 302:
            raise RuntimeError(f"sign-up of {username} failed")
        response = client.upload(avatar(4096, seed=step * AVATARS + n), "a.png", "image/png")
        if response.status_code != 302:
            raise RuntimeError(f"upload {n} at step {step}: {response.status_code}")
        times.append(1000 * response.elapsed.total_seconds())
        links = client.avatar_links(username)
        urls += [links.image_url, links.thumb_url]
        keys.append(key_of(links.image_url, "/media/"))
    return times, urls, keys


def wait_for_copies(client, keys: Sequence[str], copies: int = 3, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for key in keys:
        while client.file_info(key).devcount < copies:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{key} did not reach {copies} copies in {timeout:g} s")
            time.sleep(0.2)


def warm_up(stack, step: int) -> None:
    """First views of files outside the sample, so that no worker starts cold on it."""
    warm = [f"/media/view/{step}/w{n:03d}" for n in range(VIEW_THREADS * 2)]
    with concurrent.futures.ThreadPoolExecutor(VIEW_THREADS) as pool:
        for body in pool.map(lambda url: fetch(stack.site_url + url), warm):
            if body != TINY:
                raise RuntimeError("a warm-up GET did not answer the stored file")


def view_keys(step: int) -> list[tuple[str, str]]:
    """The files saved for first views at ``step``: originals, thumbnails, the warm-up's."""
    keys = [(f"view/{step}/a{n:03d}", "avatar") for n in range(VIEWS)]
    keys += [(f"view/{step}/t{n:03d}", "thumb") for n in range(VIEWS)]
    return keys + [(f"view/{step}/w{n:03d}", "thumb") for n in range(VIEW_THREADS * 2)]


def first_views(stack, urls: Sequence[str]) -> float:
    """GET each URL once through the front, VIEW_THREADS at a time: requests per second."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(VIEW_THREADS) as pool:
        for _ in pool.map(lambda url: fetch(stack.site_url + url), urls):
            pass
    return len(urls) / (time.perf_counter() - start)


def renders(client, path: str, meter: Meter) -> tuple[float, float]:
    """Median render time (ms) of ``path`` and the tracker requests per render."""
    times = []
    with meter.measuring() as counted:
        for _ in range(RENDERS):
            start = time.perf_counter()
            response = client.get(path)
            times.append(1000 * (time.perf_counter() - start))
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code}")
    return statistics.median(times), counted[0] / RENDERS


def copy_rate(stack, target: Path) -> float:
    """``mogilefs_copy`` of the COPY_FILES files out of MogileFS: files per second."""
    env = {**os.environ, **stack.services()["app"].env}
    argv = [str(ROOT / "app/entrypoint"), sys.executable, str(ROOT / "app/manage.py")]
    argv += ["mogilefs_copy", "thumbs", f"dir:{target}", "--prefix", "copysrc/", "--no-progress"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"mogilefs_copy failed: {done.stderr.strip() or done.stdout.strip()}")
    # "Copied 500 file(s), ... in 3.2 s (...)"
    first = done.stdout.splitlines()[0]
    copied = int(first.split()[1])
    seconds = float(first.split(" in ")[1].split(" s")[0])
    if copied != COPY_FILES:
        raise RuntimeError(f"mogilefs_copy copied {copied} files, not {COPY_FILES}: {first}")
    return copied / max(seconds, 1e-3)


def walk(storage, path: str = "") -> int:
    """Every folder under ``path`` listed with ``storage.listdir``: the files seen."""
    dirs, files = storage.listdir(path)
    prefix = f"{path}/" if path else ""
    return len(files) + sum(walk(storage, prefix + d) for d in dirs)


def settle(trackers: Trackers, timeout: float = 1200.0) -> float:
    """Until the trackers are idle (the busier under SETTLED_PCT of a core over a second):
    after a fill they check each new file's copies, as mogilefsd's replicators do, since
    create_close queues every file. The seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = trackers.cpu_seconds()
        time.sleep(1.0)
        after = trackers.cpu_seconds()
        if max(b - a for a, b in zip(before, after, strict=True)) < SETTLED_PCT / 100:
            return time.monotonic() - start
    raise RuntimeError(f"the trackers were still busy {timeout:g} s after the fill")


def idle(trackers: Trackers) -> tuple[float, float]:
    """The busier tracker's CPU (% of a core) over IDLE_SECONDS, the larger RSS (MB)."""
    before = trackers.cpu_seconds()
    time.sleep(IDLE_SECONDS)
    after = trackers.cpu_seconds()
    busiest = max(b - a for a, b in zip(before, after, strict=True))
    return 100 * busiest / IDLE_SECONDS, max(trackers.rss_mb())


def storage_for(stack, mogile_class: str | None = None):
    """A MogileFSStorage on the stack's domain in this process, with the site's cache (so a
    file saved here has its class cached for the site's first view, as an upload has)."""
    import django
    from django.conf import settings

    if not settings.configured:
        # The site's own parser of CACHE_URL, loaded from its file (the site is no package).
        spec = importlib.util.spec_from_file_location("site_env", ROOT / "app/avatar_site/env.py")
        site_env = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(site_env)
        env = stack.services()["app"].env
        cache = site_env.parse_cache(env.get("CACHE_URL"), env.get("MEMCACHED_LOCATION"))
        # Django's own class for the site's (which only keeps connections open): the same
        # keys and values, and no import of the site's modules.
        if cache["BACKEND"].endswith("PyMemcacheCache"):
            cache["BACKEND"] = "django.core.cache.backends.memcached.PyMemcacheCache"
        settings.configure(
            MOGILEFS_TRACKERS=list(stack.trackers),
            MOGILEFS_DOMAIN=stack.domain,
            CACHES={"default": cache},
        )
        django.setup()
    from django_mogilefs.storage import MogileFSStorage

    return MogileFSStorage(mogile_class=mogile_class, allow_overwrite=True)


def store_views(stack, keys: Sequence[tuple[str, str]]) -> None:
    """The first views' own files, saved through the storage as the site saves uploads."""
    from django.core.files.base import ContentFile

    storages = {cls: storage_for(stack, cls) for cls in {cls for _, cls in keys}}
    for key, cls in keys:
        storages[cls].save(key, ContentFile(TINY))


# -- the run ---------------------------------------------------------------------------------


def measure_step(stack, files: int, stored: int, tmp: Path, state: dict) -> Step:
    """Fill up to ``files`` (counting this step's own writes), then measure everything."""
    from django_mogilefs.client import MogileFSClient
    from siteclient import SiteClient

    def say(text: str) -> None:
        print(f"bench-scale: {files} files: {text}", file=sys.stderr, flush=True)

    step, trackers = Step(files), state["trackers"]
    views = view_keys(files)
    own = STORES + 2 * AVATARS + len(views) + (0 if state.get("copysrc") else COPY_FILES)
    todo = files - stored - own
    if todo < 0:
        raise RuntimeError(f"step {files} is too small: it writes {own} files itself")
    start = time.monotonic()
    keys = [(fill_key(n), FILL_CLASS) for n in range(state["filled"], state["filled"] + todo)]
    if not state.get("copysrc"):
        keys += [(f"copysrc/{n:03d}", FILL_CLASS) for n in range(COPY_FILES)]
        state["copysrc"] = True
    say(f"filling {len(keys)} files")
    fill(stack, keys)
    state["filled"] += todo
    step.fill_s = time.monotonic() - start
    say(f"filled in {step.fill_s:.0f} s; waiting for the trackers to settle")
    step.settle_s = settle(trackers)
    say(f"settled in {step.settle_s:.0f} s; measuring")

    meter = Meter(trackers)
    client = MogileFSClient(stack.trackers, stack.domain)
    try:
        with meter.measuring():
            step.store_ms = store_times(client, files)
        with meter.measuring():
            step.upload_ms, urls, avatar_keys = upload_avatars(stack, files)
        store_views(stack, views)
        originals = [key for key, cls in views if cls == "avatar"]
        wait_for_copies(client, avatar_keys + originals)  # replicated before they are viewed
        warm_up(stack, files)
        urls += [f"/media/{key}" for key, _ in views if "/w" not in key]
        with meter.measuring() as counted:
            step.view_rps = first_views(stack, urls)
        step.view_calls = counted[0] / len(urls)
        step.gallery_ms, step.gallery_calls = renders(
            SiteClient(stack.site_url), "/gallery/", meter
        )
        staff = state.setdefault("staff", SiteClient(stack.site_url))
        if not state.get("logged_in"):
            if staff.log_in(*stack.staff_login()).status_code != 302:
                raise RuntimeError("staff log-in failed")
            state["logged_in"] = True
        step.status_ms, step.status_calls = renders(staff, "/status/", meter)
    finally:
        client.close()
    step.tracker_cpu_s, step.tracker_queries = meter.cpu, meter.queries

    say("copying out")
    step.copy_fps = copy_rate(stack, tmp / f"copy-{files}")
    storage = storage_for(stack)
    listing = Meter(trackers)
    with listing.measuring() as counted:
        step.ls_top_ms = timed(lambda: storage.listdir(""))
    step.ls_top_calls = counted[0]
    say("listing every folder")
    start = time.perf_counter()
    step.ls_all_keys = walk(storage)
    step.ls_all_s = time.perf_counter() - start
    if step.ls_all_keys != files:
        raise RuntimeError(f"the full listing found {step.ls_all_keys} files, not {files}")
    settle(trackers)  # the replication checks of this step's own writes
    step.idle_cpu_pct, step.idle_rss_mb = idle(trackers)
    return step


COLUMNS = (
    # header, width, the figure
    ("files", 7, lambda s: f"{s.files}"),
    (
        "store p50/p99",
        14,
        lambda s: f"{percentile(s.store_ms, 50):.1f}/{percentile(s.store_ms, 99):.1f}",
    ),
    ("upload", 7, lambda s: f"{statistics.median(s.upload_ms):.0f}"),
    ("trk ms", 7, lambda s: f"{s.tracker_ms:.2f}"),
    ("view/s", 7, lambda s: f"{s.view_rps:.0f}"),
    ("calls", 6, lambda s: f"{s.view_calls:.2f}"),
    ("gallery", 12, lambda s: f"{s.gallery_ms:.1f} ({s.gallery_calls:.0f})"),
    ("status", 12, lambda s: f"{s.status_ms:.0f} ({s.status_calls:.1f})"),
    ("copy/s", 7, lambda s: f"{s.copy_fps:.0f}"),
    ("ls top", 12, lambda s: f"{s.ls_top_ms:.1f} ({s.ls_top_calls})"),
    ("ls all s", 9, lambda s: f"{s.ls_all_s:.2f}"),
    ("idle %/MB", 10, lambda s: f"{s.idle_cpu_pct:.1f}/{s.idle_rss_mb:.0f}"),
    ("fill s", 7, lambda s: f"{s.fill_s:.0f}"),
    ("settle", 7, lambda s: f"{s.settle_s:.0f}"),
)

# name, the figure, whether it is a rate (its growth as a cost is first/last)
GROWTH: tuple[tuple[str, Callable[[Step], float], bool], ...] = (
    ("store", lambda s: percentile(s.store_ms, 50), False),
    ("store_p99", lambda s: percentile(s.store_ms, 99), False),
    ("upload", lambda s: statistics.median(s.upload_ms), False),
    ("tracker_cpu", lambda s: s.tracker_ms, False),
    ("first_view", lambda s: s.view_rps, True),
    ("gallery", lambda s: s.gallery_ms, False),
    ("status", lambda s: s.status_ms, False),
    ("copy", lambda s: s.copy_fps, True),
    ("ls_top", lambda s: s.ls_top_ms, False),
    ("ls_all", lambda s: s.ls_all_s, False),
    ("idle_cpu", lambda s: s.idle_cpu_pct, False),
    ("idle_rss", lambda s: s.idle_rss_mb, False),
)


def growth(first: Step, last: Step) -> str:
    parts = []
    for name, figure, rate in GROWTH:
        a, b = figure(first), figure(last)
        ratio = (a / b if rate else b / a) if min(a, b) > 0 else float("nan")
        parts.append(f"{name}={ratio:.1f}x")
    files = last.files / first.files
    return f"scale: {' '.join(parts)} (files={files:.0f}x: {first.files} -> {last.files})"


def report(steps: Sequence[Step]) -> str:
    header = "".join(f"{name:>{width}}" for name, width, _ in COLUMNS)
    lines = [
        "store, upload: ms; trk ms: the trackers' CPU per tracker request; view/s, calls:",
        "first views a second and tracker requests per view; gallery, status: ms (tracker",
        "requests per render); copy/s: mogilefs_copy files/s; ls top: listdir('') ms (tracker",
        "requests); ls all: s to list every folder; idle: the busier tracker's % of a core and",
        "the larger RSS (MB); fill, settle: s to store the fill and for the trackers to be idle",
        f"again; {os.cpu_count()} CPUs",
        "",
        header,
    ]
    lines += ["".join(f"{figure(s):>{width}}" for _, width, figure in COLUMNS) for s in steps]
    if len(steps) > 1:
        lines += ["", growth(steps[0], steps[-1])]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        steps: list[Step] = []
        try:
            with native_stack(Path(tmp) / "stack") as stack:
                state = {"trackers": Trackers(stack), "filled": 0}
                for files in args.steps:
                    stored = steps[-1].files if steps else 0
                    steps.append(measure_step(stack, files, stored, Path(tmp), state))
                    print(report(steps[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
        except RuntimeError as exc:
            print(f"bench-scale: error: {exc}", file=sys.stderr)
            return 1
    text = report(steps)
    print(text)
    if args.doc:
        print(
            f"bench-scale: written to {benchdoc.write('bench-scale', TITLE, text)}", file=sys.stderr
        )
    return 0


def parse_steps(text: str) -> list[int]:
    steps = [int(part) for part in text.replace(" ", "").split(",") if part]
    if not steps or steps != sorted(set(steps)):
        raise argparse.ArgumentTypeError(f"steps must grow, as 1000,10000: {text!r}")
    return steps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("BENCH_SCALE_STEPS") or ",".join(map(str, DEFAULT_STEPS))
    parser.add_argument(
        "--steps",
        type=parse_steps,
        default=parse_steps(default),
        help=f"files in the domain at each step (BENCH_SCALE_STEPS, else {default})",
    )
    parser.add_argument(
        "--no-doc", dest="doc", action="store_false", help="do not write docs/bench.md"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
