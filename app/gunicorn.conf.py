"""gunicorn settings for the avatar site, in the container and in `make dev`.

Run: ``gunicorn --config app/gunicorn.conf.py avatar_site.wsgi:application``
with ``app`` on PYTHONPATH. Perlbal sits in front: it buffers responses for slow
clients, but streams uploads through (a slow upload holds one thread).
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads, not sync workers: a connection Perlbal opened for a client who then left
# waits in the worker's poller instead of blocking the whole worker until its
# timeout kills it. Perlbal itself keeps no backend connections (perlbal.conf).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
