"""Records API, in-process: CPU time of one request through Django's WSGI handler.

Usage::

    python bench/api_cpu.py [--records 5000] [--requests 2000] [--profile first] [--profile-out FILE]
        [--database-url postgres://postgres@127.0.0.1:5432/dataflow_apicpu]

Prepares the database as ``bench/api_bench.py`` does (the same ``sales``
dataset, viewer and settings: DEBUG and HTTPS off, throttles raised out of
the way), then calls the WSGI application directly in this process, no
server and no socket, for each scenario: the first page, a page half way
through (by the API's own cursor), the first page filtered on
``country=FR``, and a page of 1 record (the fixed cost). It prints the
process CPU time per request (``time.process_time``, so Postgres' own work
is not in it) and the statements per request. ``--profile NAME`` runs that
scenario under cProfile, timed by process CPU time as the figures are, and
prints the top functions by cumulative time (``PROFILE_SORT=tottime`` to
sort otherwise; ``--profile-out FILE`` keeps the raw stats for ``pstats``).

Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import api_bench


def environ_for(path: str, token: str) -> dict[str, object]:
    """A WSGI environ as gunicorn would pass it for ``GET path``."""
    raw_path, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": raw_path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_ACCEPT": "application/json",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=2_000, help="measured requests per scenario (default 2000)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_API_CPU_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dataflow_apicpu"),
    )
    parser.add_argument("--profile", choices=["first", "deep", "filtered", "one"], help="cProfile one scenario")
    parser.add_argument("--scenario", action="append", choices=["first", "deep", "filtered", "one"])
    parser.add_argument("--profile-out", help="also write the profile's raw stats to this file (for pstats)")
    args = parser.parse_args()

    url = args.database_url
    data_dir = Path(tempfile.mkdtemp(prefix="dataflow-apicpu-"))
    env = api_bench.server_env(url, data_dir)
    prepared = api_bench.prepare(url, args.records, env, index=True)
    api_bench.make_viewer(env)
    depth = args.records // 2
    deep_cursor = api_bench.cursor_for(api_bench.deep_key(url, depth))

    # As gunicorn runs it (dataflow/gunicorn.conf.py sets a metrics directory).
    os.environ.update(env)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="dataflow-apicpu-metrics-"))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection, reset_queries
    from rest_framework_simplejwt.tokens import RefreshToken

    token = str(RefreshToken.for_user(get_user_model().objects.get(username=api_bench.USERNAME)).access_token)
    base = f"/api/v1/datasets/{api_bench.DATASET}/records/"
    scenarios = {
        "first": ("first page", base),
        "deep": (f"page {depth:,} deep", f"{base}?{urlencode({'cursor': deep_cursor})}"),
        "filtered": ("filtered country=FR", f"{base}?{urlencode([api_bench.FILTER])}"),
        "one": ("page of 1 record", f"{base}?page_size=1"),
    }
    handler = WSGIHandler()

    def call(path: str) -> tuple[str, bytes]:
        status: list[str] = []
        body = b"".join(handler(environ_for(path, token) | {"wsgi.input": io.BytesIO()}, lambda s, h: status.append(s)))
        return status[0], body

    print(f"records={args.records:,} ({prepared}); {args.requests} requests per scenario, in-process")
    print(f"{'scenario':22s} {'CPU ms/req':>10s} {'queries/req':>11s} {'KB':>6s}")
    for name in args.scenario or list(scenarios):
        label, path = scenarios[name]
        status, body = call(path)
        if not status.startswith("200"):
            raise SystemExit(f"{label}: {status} {body[:300]!r}")
        for _ in range(200):  # warm caches and connections
            call(path)
        connection.force_debug_cursor = True
        reset_queries()
        call(path)
        queries = len(connection.queries)
        connection.force_debug_cursor = False
        start = time.process_time()
        for _ in range(args.requests):
            call(path)
        per_request = (time.process_time() - start) / args.requests * 1000
        print(f"{label:22s} {per_request:10.3f} {queries:11d} {len(body) / 1024:6.1f}")
    if args.profile:
        label, path = scenarios[args.profile]
        profiler = cProfile.Profile(time.process_time)  # CPU, as the figures above
        profiler.enable()
        for _ in range(args.requests):
            call(path)
        profiler.disable()
        if args.profile_out:
            profiler.dump_stats(args.profile_out)
        pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(45)


if __name__ == "__main__":
    main()
