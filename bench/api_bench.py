"""Records API benchmark: gunicorn (4 workers) on 127.0.0.1, a JWT, three kinds of page.

Usage::

    python bench/api_bench.py --records 1000000 [--duration 10] [--concurrency 8]
        [--database-url postgres://postgres@127.0.0.1:5432/dataflow_apibench]

What it does, in order (the whole run is bounded: preparation, then
``4 x (--warmup + --duration)`` seconds of load, then shutdown):

1. **Prepares the database** unless it already holds ``--records`` records of
   the ``sales`` dataset (then it is reused as is): drops and creates it,
   ``manage.py migrate``, ``dataset_apply bench/sales.schema.json`` (with
   ``country`` marked ``indexed`` unless ``--no-index``; ``records_index``
   then makes or drops its filter index, on a reused database too), ingests a
   generated sample of 5,000 rows with ``ingest_csv`` (real records, real run,
   the pipeline's own typed values in the dataset's table ``datasets."sales"``),
   then copies the sample's rows set-based (``INSERT … SELECT …
   generate_series``) under new keys (``S<9 digits>``, the generator's key
   format, also put in the key field ``id``) up to ``--records``, and
   ``VACUUM ANALYZE``. ``migrate`` always runs, so a cached database gets new
   migrations (indexes) too.
2. Makes a viewer (a user with a ``viewer`` grant on ``sales`` only, not a
   superuser: grants are checked as for any client).
3. Starts gunicorn with ``dataflow/gunicorn.conf.py`` (``--workers``, default 4, as the file's)
   on a free 127.0.0.1 port, DEBUG and HTTPS off, throttles raised out of the way.
4. Gets a JWT from ``/api/v1/auth/token/``.
5. For each scenario (first page; a page ``--records``/2 deep, reached with
   the API's own keyset cursor; the first page filtered on ``country=FR``,
   about one record in 16; the same filter on a value no record holds,
   ``country=ZZ``, an empty page),
   checks one answer, then drives load from separate client processes (pure
   Python, one keep-alive connection per thread) for ``--warmup`` seconds
   (discarded) and ``--duration`` seconds (measured), and prints p50 / p90 /
   p99 latency, requests/s, errors, the CPU the server workers and the
   clients used per request (2 cores are shared by both; the client share is
   the benchmark's own overhead), the CPU of the Postgres backends serving
   the benchmark's database, how busy the machine's CPUs were, and the part
   of that used by none of these ("others": whatever else runs on a shared
   machine).

Figures only: nothing is asserted. Page size is the API's default (100).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SCHEMA = ROOT / "bench" / "sales.schema.json"
PY = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
SAMPLE_ROWS = 5_000
USERNAME = "apibench-viewer"
PASSWORD = "apibench-viewer-password-0123"  # noqa: S105  # nosec B105: a local benchmark account
DATASET = "sales"
FILTER = ("country", "FR")  # about 1 record in 16
RARE = "ZZ"  # no record: the filter must look through the whole dataset unless an index answers it
# The dataset's own table (processing/record_tables.py): DATASETS_DB_SCHEMA, as the server reads it.
TABLE_SCHEMA = os.environ.get("DATASETS_DB_SCHEMA") or "datasets"
TABLE = f'"{TABLE_SCHEMA}"."{DATASET}"'
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FLOOR_APP = "bench.floor_app:application"  # the same pages without Django (bench/floor_app.py)


# --- Preparing the database --------------------------------------------------------------


def psql(url: str, sql: str, *, quiet: bool = True) -> str:
    cmd = ["psql", url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql]
    return subprocess.run(cmd, check=True, capture_output=quiet, text=True).stdout.strip() if quiet else ""


def record_count(url: str) -> int | None:
    """Records of the sales dataset (rows of its table), or None when the database or the table is missing."""
    try:
        out = psql(url, f"SELECT count(*) FROM {TABLE}")
    except subprocess.CalledProcessError:
        return None
    return int(out)


def server_env(url: str, data_dir: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GUNICORN_"))},
        "DATABASE_URL": url,
        "DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "dataflow.settings.base",
        "DATAFLOW_ENV_FILE": "/nonexistent",
        "SECRET_KEY": "api-benchmark-only-secret-key-0123456789-abcdefghijklmnop",
        "JWT_SIGNING_KEY": "api-benchmark-only-jwt-signing-key-0123456789",
        "ENCRYPTION_KEYS": os.environ.get("ENCRYPTION_KEYS") or Fernet.generate_key().decode(),
        "DEBUG": "false",
        "HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # Out of the way: one user sends every request. A one-second window keeps
        # the throttle's history (a list per user in the cache) short.
        "API_THROTTLE_USER": "100000000/second",
        "API_THROTTLE_ANON": "100000000/second",
        "API_THROTTLE_AUTH": "100000000/second",
    }


def schema_file(index: bool) -> Path:
    """bench/sales.schema.json, with the filtered field marked ``indexed`` when ``index``."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    for f in schema["fields"]:
        if f["name"] == FILTER[0] and index:
            f["indexed"] = True
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"api-sales{'-indexed' if index else ''}.schema.json"
    path.write_text(json.dumps(schema, indent=2), encoding="utf-8")
    return path


def apply_schema(env: dict[str, str], index: bool) -> None:
    """The schema (a new version when ``indexed`` changes), then the filter indexes it asks for."""
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "dataset_apply", str(schema_file(index))], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*manage, "records_index", "--dataset", DATASET], env=env, check=True, stdout=subprocess.DEVNULL)


def prepare(url: str, records: int, env: dict[str, str], index: bool) -> str:
    """Make sure the database holds ``records`` records; say what was done."""
    manage = [PY, str(ROOT / "manage.py")]
    found = record_count(url)
    if found == records:
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
        apply_schema(env, index)
        psql(url, f"VACUUM ANALYZE {TABLE}")
        return f"reused (already {records:,} records)"
    start = time.perf_counter()
    dbname = urlparse(url).path.lstrip("/")
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    psql(admin_url, f'DROP DATABASE IF EXISTS "{dbname}"')
    psql(admin_url, f'CREATE DATABASE "{dbname}"')
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    apply_schema(env, index)
    sample_rows = min(SAMPLE_ROWS, records)
    OUT.mkdir(parents=True, exist_ok=True)
    sample = OUT / f"api-sample-{sample_rows}.csv"
    if not sample.exists():
        cmd = [PY, str(ROOT / "bench/generate_csv.py"), "--rows", str(sample_rows), "--seed", "1"]
        subprocess.run([*cmd, "--invalid-rate", "0", "--output", str(sample)], check=True)
    cmd = [*manage, "ingest_csv", "--dataset", DATASET, "--json", str(sample)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    loaded = record_count(url) or 0
    missing = records - loaded
    if missing > 0:
        # Copies of the sample's rows (the pipeline's own typed values and
        # lineage, from the same run) under new keys after the sample's, the
        # key field ``id`` set to the new key as the pipeline would.
        columns = psql(
            url,
            "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) "
            f"FROM information_schema.columns WHERE table_schema = '{TABLE_SCHEMA}' AND table_name = '{DATASET}' "
            "AND column_name NOT IN ('id', '_key')",
        )
        copied = ", ".join(f"s.{c.strip()}" for c in columns.split(","))
        psql(
            url,
            f"""
            CREATE TEMP TABLE sample AS
                SELECT row_number() OVER (ORDER BY _key) - 1 AS n, * FROM {TABLE};
            INSERT INTO {TABLE} (id, _key, {columns})
            SELECT k.key, k.key, {copied}
            FROM generate_series(1, {missing}) AS g(i)
            CROSS JOIN LATERAL (SELECT 'S' || lpad(({SAMPLE_ROWS * 2} + g.i)::text, 9, '0') AS key) AS k
            JOIN sample s ON s.n = g.i % {loaded};
            """,
        )
    elif missing < 0:
        raise SystemExit(f"the sample alone holds {loaded} records; ask for at least that many")
    psql(url, "VACUUM ANALYZE")
    return f"prepared in {time.perf_counter() - start:.0f} s"


def make_viewer(env: dict[str, str], username: str = USERNAME, role: str = "VIEWER") -> None:
    """A user with one grant (``role``, a DatasetRole name) on the sales dataset, password PASSWORD."""
    code = f"""
from django.contrib.auth import get_user_model
from ingestion.models import Dataset, DatasetGrant, DatasetRole
user, _ = get_user_model().objects.get_or_create(username={username!r})
user.set_password({PASSWORD!r}); user.is_active = True; user.save()
DatasetGrant.objects.update_or_create(dataset=Dataset.objects.get(slug={DATASET!r}), user=user,
                                      defaults={{"role": DatasetRole.{role}}})
"""
    subprocess.run([PY, str(ROOT / "manage.py"), "shell", "-c", code], env=env, check=True)


def deep_key(url: str, depth: int) -> str:
    return psql(url, f"SELECT _key FROM {TABLE} ORDER BY _key OFFSET {max(depth - 1, 0)} LIMIT 1")


# --- The server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(
    env: dict[str, str],
    port: int,
    workers: int,
    threads: int,
    log: Path,
    extra_env: dict[str, str] | None = None,
    app: str = "dataflow.wsgi:application",
) -> subprocess.Popen[bytes]:
    """gunicorn serving ``app`` with dataflow/gunicorn.conf.py; returns once /health/live/ answers."""
    env = {**env, **(extra_env or {}), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    if threads:
        env["GUNICORN_THREADS"] = str(threads)
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [GUNICORN, app, "--config", "dataflow/gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn stopped (exit {proc.returncode}); see {log}")
        try:
            status, _ = request("127.0.0.1", port, "GET", "/health/live/")
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"gunicorn did not answer within 60 s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of each Postgres backend connected to the benchmark's database."""
    dbname = urlparse(url).path.lstrip("/")
    out = psql(url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{dbname}' AND pid <> pg_backend_pid()")
    return {int(pid): cpu_seconds([int(pid)]) for pid in out.split()}


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


@dataclass
class CpuSplit:
    """CPU seconds used by each group of processes over a measured window, and how busy the machine was."""

    seconds: dict[str, float]
    busy_pct: float  # of all cores over the window
    others_pct: float  # the part of busy_pct used by none of the groups


class CpuMeter:
    """CPU used from its creation to ``stop()``: named groups of processes, the database's Postgres
    backends ("postgres"), the load generator ("clients", given to ``stop``) and the whole machine.

    ``groups`` maps a name to a function returning the group's pids (called at both ends, so
    processes that come and go are counted while they live; reaped children count in their parent).
    """

    def __init__(self, url: str, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.url = url
        self.groups = groups
        self.start = {name: _group_cpu(pids()) for name, pids in groups.items()}
        self.pg = backend_cpu(url)
        self.busy, self.total = machine_busy()

    def stop(self, *, clients: float = 0.0, postgres: float | None = None) -> CpuSplit:
        """``postgres``: the backends' CPU when the caller sampled it (backends that closed count too)."""
        seconds = {}
        for name, pids in self.groups.items():
            now = _group_cpu(pids())
            seconds[name] = sum(cpu - self.start[name].get(pid, 0.0) for pid, cpu in now.items())
        if postgres is None:
            postgres = sum(cpu - self.pg.get(pid, 0.0) for pid, cpu in backend_cpu(self.url).items())
        seconds["postgres"] = postgres
        seconds["clients"] = clients
        busy, total = machine_busy()
        window = total - self.total
        used = busy - self.busy
        others = max(0.0, used - sum(seconds.values()))
        return CpuSplit(seconds, used / window * 100, others / window * 100)


def _group_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds so far of each process, its reaped children included."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = sum(int(f) for f in fields[11:15]) / CLOCK_TICKS  # utime, stime, cutime, cstime
    return out


def request(
    host: str, port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# --- The load generator -------------------------------------------------------------------


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)  # perf_counter() at each latency's start
    errors: int = 0
    first_error: str = ""
    cpu: float = 0.0


def _client_thread(port: int, path: str, headers: dict[str, str], start: float, stop_at: float, out: Outcome) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, stamps = out.latencies, out.stamps
    clock = time.perf_counter
    while True:
        begin = clock()
        if begin >= stop_at:
            break
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            ok = False
            if not out.first_error:
                out.first_error = repr(exc)
        end = clock()
        if begin >= start:  # requests started during the warm-up are not counted
            if ok:
                latencies.append(end - begin)
                stamps.append(begin)
            else:
                out.errors += 1
                if not out.first_error:
                    out.first_error = f"HTTP {response.status}"
    conn.close()


def _client_process(args: tuple[int, str, dict[str, str], float, float, int]) -> Outcome:
    port, path, headers, start, stop_at, threads = args
    outcomes = [Outcome() for _ in range(threads)]
    workers = [threading.Thread(target=_client_thread, args=(port, path, headers, start, stop_at, o)) for o in outcomes]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = Outcome(cpu=usage.ru_utime + usage.ru_stime)
    for o in outcomes:
        total.latencies.extend(o.latencies)
        total.stamps.extend(o.stamps)
        total.errors += o.errors
        total.first_error = total.first_error or o.first_error
    return total


def drive(
    port: int, path: str, token: str, *, concurrency: int, clients: int, warmup: float, duration: float
) -> Outcome:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    clients = max(1, min(clients, concurrency))
    per = [concurrency // clients + (1 if i < concurrency % clients else 0) for i in range(clients)]
    # Processes are forked and ready before the clock starts.
    context = multiprocessing.get_context("fork")
    with context.Pool(clients) as pool:
        pool.map(abs, range(clients))
        start = time.perf_counter() + 0.2 + warmup
        stop_at = start + duration
        results = pool.map(_client_process, [(port, path, headers, start, stop_at, n) for n in per])
    total = Outcome()
    for r in results:
        total.latencies.extend(r.latencies)
        total.stamps.extend(r.stamps)
        total.errors += r.errors
        total.first_error = total.first_error or r.first_error
        total.cpu += r.cpu
    return total


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


# --- Main ---------------------------------------------------------------------------------


def machine_facts(url: str) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem = next(
        (int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line),
        0,
    )
    pg = psql(url, "SHOW server_version")
    buffers = psql(url, "SHOW shared_buffers")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores, {cpu}, {mem:,} MB; Postgres {pg} (shared_buffers {buffers}); "
        f"Python {platform.python_version()}; load average {load}"
    )


def cursor_for(key: str) -> str:
    """A forward cursor of the key ordering, in RecordCursor's format (api/pagination.py)."""
    payload = {"o": "key", "v": key, "k": key, "b": False}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_API_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dataflow_apibench"),
        help="Postgres database to use; recreated unless it already holds --records records.",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections in flight (default 8)")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=0, help="threads per worker (default: gunicorn.conf.py's, 1)")
    parser.add_argument(
        "--no-index", action="store_true", help=f"do not mark {FILTER[0]} indexed (drops its filter index)"
    )
    parser.add_argument("--no-floor", action="store_true", help="do not run the bare WSGI floor beside the API")
    parser.add_argument(
        "--scenario", action="append", choices=["first", "deep", "filtered", "rare"], help="(repeatable)"
    )
    args = parser.parse_args()
    if not shutil.which("psql"):
        raise SystemExit("psql is needed (postgresql-client)")

    url = args.database_url
    data_dir = OUT / "api-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = server_env(url, data_dir)
    prepared = prepare(url, args.records, env, index=not args.no_index)
    make_viewer(env)

    depth = args.records // 2
    base = f"/api/v1/datasets/{DATASET}/records/"
    scenarios = {
        "first": ("first page", base),
        "deep": (f"page {depth:,} deep", f"{base}?{urlencode({'cursor': cursor_for(deep_key(url, depth))})}"),
        "filtered": (f"filtered {FILTER[0]}={FILTER[1]}", f"{base}?{urlencode([FILTER])}"),
        "rare": (f"filtered {FILTER[0]}={RARE} (none)", f"{base}?{urlencode([(FILTER[0], RARE)])}"),
    }
    chosen = args.scenario or list(scenarios)

    port = free_port()
    proc = start_gunicorn(env, port, args.workers, args.threads, OUT / "api-gunicorn.log")
    floor: subprocess.Popen[bytes] | None = None
    try:
        status, body = request(
            "127.0.0.1",
            port,
            "POST",
            "/api/v1/auth/token/",
            json.dumps({"username": USERNAME, "password": PASSWORD}).encode(),
            {"Content-Type": "application/json"},
        )
        if status != 200:
            raise SystemExit(f"no token: HTTP {status} {body[:300]!r}")
        token = json.loads(body)["access"]
        workers = worker_pids(proc.pid)
        floor_port = free_port()
        if not args.no_floor:
            floor_env = {"FLOOR_DATABASE_URL": url, "FLOOR_TABLE_SCHEMA": TABLE_SCHEMA}
            floor = start_gunicorn(
                env, floor_port, args.workers, args.threads, OUT / "api-floor.log", floor_env, app=FLOOR_APP
            )
        floor_workers = worker_pids(floor.pid) if floor else []

        index = "no filter index" if args.no_index else f"{FILTER[0]} indexed"
        print(f"\nrecords={args.records:,} ({prepared}); database {urlparse(url).path.lstrip('/')}; {index}")
        print(machine_facts(url))
        print(
            f"gunicorn: {args.workers} workers x {args.threads or 'default'} threads (dataflow/gunicorn.conf.py) "
            f"on 127.0.0.1:{port}"
            + (f", the floor ({FLOOR_APP}) likewise on 127.0.0.1:{floor_port}" if floor else "")
            + f"; load: {args.concurrency} keep-alive connections from {args.clients} client processes; "
            f"{args.warmup:g} s warm-up + {args.duration:g} s per scenario"
            + (" and server, DataFlow then the floor" if floor else "")
        )
        header = (
            f"{'scenario':27s} {'p50 ms':>7s} {'p90 ms':>7s} {'p99 ms':>7s} {'req/s':>7s} {'errors':>6s} "
            f"{'CPU ms/req: server':>18s} {'postgres':>8s} {'client':>6s} {'KB/page':>7s} "
            f"{'CPU busy':>8s} {'others':>6s}"
        )
        print(header)
        print("-" * len(header))
        compared: list[tuple[str, Measured, Measured]] = []
        for name in chosen:
            label, path = scenarios[name]
            ours = measure(args, url, port, path, token, workers)
            print(ours.line(label))
            sys.stdout.flush()
            if floor:
                mine = measure(args, url, floor_port, path, "", floor_workers)
                difference = json_difference(ours.body, mine.body, port, floor_port)
                print(mine.line("  floor") + (f"  NOT THE API'S JSON: {difference}" if difference else ""))
                compared.append((label, ours, mine))
                sys.stdout.flush()
        if compared:
            print_floor_table(compared)
    finally:
        stop(proc)
        if floor:
            stop(floor)


@dataclass
class Measured:
    """One scenario against one server: the latencies and CPU split of its measured window."""

    latencies: list[float]
    rate: float
    errors: int
    first_error: str
    per_req_ms: dict[str, float]
    split: CpuSplit
    body: bytes

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    def line(self, label: str) -> str:
        rows = len(json.loads(self.body)["results"])
        per = self.per_req_ms
        return (
            f"{label:27s} {self.p(0.5):7.1f} {self.p(0.9):7.1f} {self.p(0.99):7.1f} {self.rate:7.0f} "
            f"{self.errors:6d} {per['server']:18.2f} {per['postgres']:8.2f} {per['clients']:6.2f} "
            f"{len(self.body) / 1024:7.1f} {self.split.busy_pct:7.0f}% {self.split.others_pct:5.0f}%"
            + (f"  ({rows} rows)" if rows != 100 else "")
            + (f"  first error: {self.first_error}" if self.first_error else "")
        )


def measure(args: argparse.Namespace, url: str, port: int, path: str, token: str, workers: list[int]) -> Measured:
    """Check one answer, then load the server for --warmup + --duration seconds."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    status, body = request("127.0.0.1", port, "GET", path, headers=auth)
    if status != 200:
        raise SystemExit(f"{path} on port {port}: HTTP {status} {body[:300]!r}")
    meter = CpuMeter(url, {"server": lambda: workers})
    outcome = drive(
        port,
        path,
        token,
        concurrency=args.concurrency,
        clients=args.clients,
        warmup=args.warmup,
        duration=args.duration,
    )
    split = meter.stop(clients=outcome.cpu)
    done = len(outcome.latencies)
    # Server and Postgres CPU include the warm-up's requests: scale by the measured share.
    share = args.duration / (args.warmup + args.duration)
    per_req = {k: v * share / done * 1000 if done else float("nan") for k, v in split.seconds.items()}
    return Measured(
        sorted(outcome.latencies), done / args.duration, outcome.errors, outcome.first_error, per_req, split, body
    )


def json_difference(api: bytes, floor: bytes, api_port: int, floor_port: int) -> str:
    """Where the floor's page differs from the API's (URLs compared without their port); "" when it is the same."""
    a = json.loads(api.replace(f"127.0.0.1:{api_port}".encode(), b"HOST"))
    b = json.loads(floor.replace(f"127.0.0.1:{floor_port}".encode(), b"HOST"))
    return "" if a == b else _first_difference(a, b) or "differs"


def _first_difference(a: object, b: object, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{where or 'top'}: keys {list(a)} vs {list(b)}"
        return next((_first_difference(a[k], b[k], f"{where}.{k}") for k in a if a[k] != b[k]), "")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next(
            (_first_difference(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), ""
        )
    return f"{where}: {a!r} vs {b!r}"


def print_floor_table(compared: list[tuple[str, Measured, Measured]]) -> None:
    """DataFlow beside the floor, per scenario (targets: req/s at least 50 % of the floor's, p99 within 2x)."""
    print("\nDataFlow beside the floor (same gunicorn settings, same table, same JSON)")
    header = (
        f"{'scenario':27s} {'req/s':>7s} {'floor':>7s} {'ratio':>6s} {'p99 ms':>7s} {'floor':>7s} {'ratio':>6s} "
        f"{'server CPU ms/req':>17s} {'floor':>6s}"
    )
    print(header)
    print("-" * len(header))
    for label, ours, floor in compared:
        rate = ours.rate / floor.rate * 100 if floor.rate else float("nan")
        p99 = ours.p(0.99) / floor.p(0.99) if floor.latencies else float("nan")
        print(
            f"{label:27s} {ours.rate:7.0f} {floor.rate:7.0f} {rate:5.0f}% {ours.p(0.99):7.1f} {floor.p(0.99):7.1f} "
            f"{p99:5.2f}x {ours.per_req_ms['server']:17.2f} {floor.per_req_ms['server']:6.2f}"
        )
    print("targets: req/s ratio >= 50 %, p99 ratio <= 2x (figures only)")


if __name__ == "__main__":
    main()
