"""gunicorn settings for the avatar site, in the container and in `make dev`.

Run from ``app/``: ``gunicorn --config gunicorn.conf.py avatar_site.wsgi:application``
(gunicorn imports the site from its working directory). Perlbal sits in front: it
buffers responses for slow clients, but streams uploads through (a slow upload holds
one thread).
"""

import os
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads, not sync workers: a connection Perlbal opened for a client who then left
# waits in the worker's poller instead of blocking the whole worker until its
# timeout kills it.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Perlbal keeps its connections to the app open between requests (persist_backend in
# perlbal.conf): opening one per request cost the cold path a connect and a graceful
# close each time. An idle one waits in the poller, holding no thread; the app closes it
# after this long, far longer than Perlbal leaves a connection idle in a busy minute.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "300"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# No access log unless asked for (GUNICORN_ACCESSLOG=- for stdout, or a file): formatting
# and writing a line under the log's lock cost a worker as much CPU per cold avatar request
# as Django's own part (make bench, side by side; figures in docs/bench.md). Perlbal answers
# most avatar GETs from its reproxy cache without the app ever seeing them, so gunicorn's
# log was never a record of the site's traffic anyway.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"

# Prometheus counters of every worker, added up at each scrape of /metrics
# (django_mogilefs.metrics_view). Set before the workers import the app.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")


def on_starting(server) -> None:
    """Start from zero: files of an earlier run would be added to this one's counters."""
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
