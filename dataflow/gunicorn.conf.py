"""gunicorn settings; every value can be overridden with GUNICORN_* variables."""

import os
from typing import Any

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Synchronous workers, about two per core (this default suits two cores). A
# sync worker takes a connection from the shared listen queue only when it is
# free, so requests are served in arrival order whichever worker is free.
# With GUNICORN_THREADS > 1 (the gthread worker) each worker accepts every
# connection it can and keeps its keep-alive clients: under load one worker
# ends up with most of them queued behind its threads while another idles,
# which tripled the 95th percentile at 50 connections (docs/performance.md,
# "Reads under concurrency"). A sync worker holds its connection for the whole
# request: keep a proxy that buffers slow clients in front of it.
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


# Add up the HTTP metrics of all workers (prometheus-client multiprocess mode).
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dataflow-metrics-")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
