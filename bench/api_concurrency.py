"""Records API under concurrency: where a read's time goes, and reads beside uploads.

Usage::

    python bench/api_concurrency.py --records 200000 high [--concurrency 50] [--duration 30]
        [--server 2x2 --server 4x1 ...] [--rounds 2]
    python bench/api_concurrency.py --records 200000 mixed [--readers 20] [--duration 60]
        [--upload-rows 20000] [--uploads-per-minute 3] [--nice 0 --nice 10] [--rounds 2]

Reuses ``bench/api_bench.py`` (database preparation, the viewer, gunicorn, the
closed-loop load generator, the CPU meter); talks only to 127.0.0.1. Every
phase is bounded: ``--warmup`` + ``--duration`` seconds of load, and in
``mixed`` at most ``--drain`` seconds more for the last upload to finish.

``high``: ``--concurrency`` keep-alive connections read the first page, once
per ``--server WORKERSxTHREADS`` and round (configurations interleaved, same
database, same run). gunicorn writes ``%(D)s`` (the microseconds from the
parsed request to the written response, in a worker thread) to its access
log; the client's latency minus that is the time the request waited: in the
listen queue, in the worker's poller and its thread pool's queue. Printed:
client p50/p95/p99, server p50/p95/p99, mean client vs mean server (the
difference is queueing), req/s, Little's law (connections / throughput),
the connections each worker holds, Postgres connections of the database
(sampled every 0.5 s from ``pg_stat_activity``: total, active, waiting on a
lock, distinct backends seen, i.e. reconnections) and the CPU split per
request (Postgres from the same samples, so backends closed by
``CONN_MAX_AGE`` during the window still count).

``mixed``: ``--readers`` connections read the first page for ``--duration``
seconds alone, then for ``--duration`` seconds while an ingester uploads a
generated CSV of ``--upload-rows`` rows (new keys each time, the generator's
default share of defects) through ``POST /api/v1/datasets/sales/uploads/``
every ``60 / --uploads-per-minute`` seconds, processed by a real
``manage.py qcluster`` (the ORM broker on the same database). Once per
``--server``, ``--nice`` value (``PIPELINE_NICE`` for the cluster) and round,
alone and mixed back to back (uploads with ``?force=true``: later runs send
the same files; their records are deleted when the benchmark ends).
Printed: the readers' p50/p95/p99 alone and mixed, the ratios, the same for
the requests that started while a run was being processed, the readers'
time in the server and each upload POST's, each upload's processing time,
the CPU split, and the Postgres sessions seen waiting on a lock.

Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench as ab  # a sibling script, not a package

UPLOADER = "apibench-uploader"
FIRST_PAGE = f"/api/v1/datasets/{ab.DATASET}/records/"
UPLOADS = f"/api/v1/datasets/{ab.DATASET}/uploads/"
UPLOAD_FIRST_ID = 500_000_000  # far above the prepared keys: each upload inserts new records


# --- Helpers --------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def pcts(values: list[float]) -> tuple[float, float, float]:
    v = sorted(values)
    return ab.percentile(v, 0.5), ab.percentile(v, 0.95), ab.percentile(v, 0.99)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def token_for(port: int, username: str) -> str:
    body = json.dumps({"username": username, "password": ab.PASSWORD}).encode()
    status, answer = ab.request(
        "127.0.0.1", port, "POST", "/api/v1/auth/token/", body, {"Content-Type": "application/json"}
    )
    if status != 200:
        raise SystemExit(f"no token for {username}: HTTP {status} {answer[:300]!r}")
    return json.loads(answer)["access"]


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants now."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(ab.worker_pids(pid))
    return found


class PgSampler(threading.Thread):
    """Samples the benchmark database's sessions in pg_stat_activity every ``every`` seconds."""

    def __init__(self, url: str, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.samples: list[tuple[int, int, int]] = []  # (total, active, waiting on a lock)
        self.lock_waits: Counter[str] = Counter()
        # CPU seconds of each backend when first and last seen: connections
        # closed during the window (CONN_MAX_AGE) still count, but for the
        # last interval of their life.
        self.first_cpu: dict[int, float] = {}
        self.last_cpu: dict[int, float] = {}
        self.backends: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        import psycopg

        dbname = urlparse(self.url).path.lstrip("/")
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._halt.wait(self.every):
                rows = conn.execute(
                    "SELECT state, wait_event_type, left(query, 70), pid FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                    [dbname],
                ).fetchall()
                first = not self.samples
                for *_, pid in rows:
                    cpu = ab.cpu_seconds([pid])
                    self.first_cpu.setdefault(pid, cpu if first else 0.0)
                    self.last_cpu[pid] = cpu
                    self.backends.add(pid)
                locked = [q for state, wait, q, _ in rows if state == "active" and wait == "Lock"]
                self.lock_waits.update(locked)
                self.samples.append((len(rows), sum(1 for r in rows if r[0] == "active"), len(locked)))

    def stop(self) -> str:
        self._halt.set()
        self.join()
        if not self.samples:
            return "no sample"
        total = [s[0] for s in self.samples]
        active = [s[1] for s in self.samples]
        locked = [s[2] for s in self.samples]
        return (
            f"{mean(total):.1f} (max {max(total)}) connected, {mean(active):.1f} (max {max(active)}) active, "
            f"max {max(locked)} waiting on a lock; {len(self.backends)} backends seen"
        )

    def cpu(self) -> float:
        """CPU seconds the database's backends used while sampled."""
        return sum(cpu - self.first_cpu[pid] for pid, cpu in self.last_cpu.items())


def connections_per_worker(port: int, workers: list[int]) -> list[int]:
    """Established connections to ``port`` held by each gunicorn worker (from ``ss -tnp``)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    return [out.count(f"pid={pid},") for pid in workers]


def access_log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def server_times(log: Path, start: int, end: int, method: str = "GET") -> list[float]:
    """The %(D)s values (seconds) of ``method`` requests logged between two offsets of the access log."""
    with log.open("rb") as fh:
        fh.seek(start)
        chunk = fh.read(end - start).decode(errors="replace")
    times = []
    for line in chunk.splitlines():
        micros, _, verb = line.partition(" ")
        if verb.strip() == method and micros.isdigit():
            times.append(int(micros) / 1e6)
    return times


class LogMarks:
    """The access log's size at the start, middle and end of a measured window (timers)."""

    def __init__(self, server: Server, warmup: float, duration: float) -> None:
        self.server = server
        self.offsets: dict[str, int] = {}
        self.conns: list[int] = []
        self.pids = server.pids()
        at = {"start": 0.2 + warmup, "mid": 0.2 + warmup + duration / 2, "end": 0.2 + warmup + duration}
        self.timers = [threading.Timer(delay, self._mark, [name]) for name, delay in at.items()]
        for t in self.timers:
            t.start()

    def _mark(self, name: str) -> None:
        self.offsets[name] = access_log_size(self.server.log)
        if name == "mid":
            self.conns = connections_per_worker(self.server.port, self.pids)

    def times(self, method: str = "GET") -> list[float]:
        for t in self.timers:
            t.join()
        return server_times(self.server.log, self.offsets["start"], self.offsets["end"], method)


@dataclass
class Server:
    """A gunicorn configuration: workers, threads, extra command-line options (``--keep-alive 0``)."""

    workers: int
    threads: int
    options: str = ""
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)

    @property
    def label(self) -> str:
        return f"{self.workers}x{self.threads}" + (f" {self.options}" if self.options else "")

    def start(self, env: dict[str, str]) -> None:
        self.port = ab.free_port()
        name = self.label.replace(" ", "").replace("-", "")
        self.log = ab.OUT / f"conc-access-{name}.log"
        self.log.unlink(missing_ok=True)
        args = f"--access-logfile {shlex.quote(str(self.log))} --access-logformat '%(D)s %(m)s' {self.options}"
        self.proc = ab.start_gunicorn(
            env,
            self.port,
            self.workers,
            self.threads,
            ab.OUT / f"conc-gunicorn-{name}.log",
            extra_env={"GUNICORN_CMD_ARGS": args},
        )

    def pids(self) -> list[int]:
        assert self.proc is not None
        return ab.worker_pids(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            ab.stop(self.proc)


def parse_server(text: str) -> Server:
    """``WORKERSxTHREADS [gunicorn options]``, e.g. ``2x2`` or ``2x2 --keep-alive 0``."""
    size, _, options = text.strip().partition(" ")
    try:
        workers, threads = (int(x) for x in size.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WORKERSxTHREADS [options], e.g. 2x2") from None
    if workers < 1 or threads < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1 worker and 1 thread")
    return Server(workers, threads, options.strip())


# --- high: many readers -------------------------------------------------------------------


def high(args: argparse.Namespace, env: dict[str, str], url: str) -> None:
    print(
        f"\nHIGH: {args.concurrency} keep-alive connections ({args.clients} client processes), first page, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s per configuration and round"
    )
    header = (
        f"{'server':>18s} {'p50':>6s} {'p95':>6s} {'p99':>6s} {'req/s':>6s} {'err':>4s} | "
        f"{'srv p50':>7s} {'srv p95':>7s} {'srv p99':>7s} | {'mean':>6s} {'in srv':>6s} {'queued':>6s} "
        f"{'N/X':>6s} | {'conns/worker':>13s} | CPU ms/req srv pg cli, busy, others | Postgres sessions"
    )
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(header)
        for server in args.server:
            server.start(env)
            try:
                token = token_for(server.port, ab.USERNAME)
                pids = server.pids()
                sampler = PgSampler(url)
                meter = ab.CpuMeter(url, {"server": lambda pids=pids: pids})
                marks = LogMarks(server, args.warmup, args.duration)
                sampler.start()
                outcome = ab.drive(
                    server.port,
                    FIRST_PAGE,
                    token,
                    concurrency=args.concurrency,
                    clients=args.clients,
                    warmup=args.warmup,
                    duration=args.duration,
                )
                srv = marks.times()
                pg = sampler.stop()
                split = meter.stop(clients=outcome.cpu, postgres=sampler.cpu())
            finally:
                server.stop()
            done = len(outcome.latencies)
            rate = done / args.duration
            c50, c95, c99 = pcts(outcome.latencies)
            s50, s95, s99 = pcts(srv)
            share = args.duration / (args.warmup + args.duration) / max(done, 1) * 1000
            cpu = " ".join(f"{split.seconds[k] * share:.1f}" for k in ("server", "postgres", "clients"))
            conns = "/".join(str(n) for n in marks.conns)
            print(
                f"{server.label:>18s} {ms(c50):>6s} {ms(c95):>6s} {ms(c99):>6s} {rate:6.0f} {outcome.errors:4d} | "
                f"{ms(s50):>7s} {ms(s95):>7s} {ms(s99):>7s} | {ms(mean(outcome.latencies)):>6s} "
                f"{ms(mean(srv)):>6s} {ms(mean(outcome.latencies) - mean(srv)):>6s} "
                f"{ms(args.concurrency / rate if rate else float('nan')):>6s} | {conns:>13s} | "
                f"{cpu}, {split.busy_pct:.0f}%, {split.others_pct:.0f}% | {pg}"
                + (f"  first error: {outcome.first_error}" if outcome.first_error else "")
            )
            sys.stdout.flush()


# --- mixed: readers beside uploads ----------------------------------------------------------


@dataclass
class Upload:
    run_url: str = ""
    posted: float = 0.0  # perf_counter
    started: float | None = None  # perf_counter, from the run's started_at
    finished: float | None = None
    status: str = ""
    rows: int = 0


class Uploader(threading.Thread):
    """Posts ``count`` files, one every ``interval`` seconds from ``start`` (perf_counter)."""

    def __init__(self, port: int, token: str, files: list[Path], start: float, interval: float) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.files, self.start_at, self.interval = port, token, files, start, interval
        self.uploads: list[Upload] = []
        self.error = ""

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "text/csv"}
        for i, path in enumerate(self.files):
            time.sleep(max(0.0, self.start_at + i * self.interval - time.perf_counter()))
            upload = Upload(posted=time.perf_counter())
            # force: the same files are sent again by later runs of the benchmark.
            status, body = ab.request(
                "127.0.0.1", self.port, "POST", f"{UPLOADS}?force=true", path.read_bytes(), headers
            )
            if status != 202:
                self.error = f"upload: HTTP {status} {body[:200]!r}"
                return
            upload.run_url = json.loads(body)["url"]
            self.uploads.append(upload)

    def wait_runs(self, deadline: float) -> None:
        """Poll every run until finished (or the deadline); fill in their processing windows."""
        headers = {"Authorization": f"Bearer {self.token}"}
        offset = time.time() - time.perf_counter()  # wall clock -> perf_counter
        for upload in self.uploads:
            while True:
                path = urlparse(upload.run_url).path
                status, body = ab.request("127.0.0.1", self.port, "GET", path, headers=headers)
                run = json.loads(body) if status == 200 else {}
                if run.get("finished") or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            upload.status = run.get("status", f"HTTP {status}")
            upload.rows = run.get("rows_read", 0) or 0
            for attr in ("started", "finished"):
                stamp = run.get(f"{attr}_at")
                if stamp:
                    setattr(upload, attr, datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - offset)


def upload_files(rows: int, count: int, first: int) -> list[Path]:
    """``count`` generated CSV files of ``rows`` rows with keys no other file or record has."""
    files = []
    for i in range(count):
        path = ab.OUT / f"conc-upload-{rows}-{first + i}.csv"
        if not path.exists():
            subprocess.run(
                [
                    *(ab.PY, str(ab.ROOT / "bench/generate_csv.py"), "--rows", str(rows), "--seed", str(first + i)),
                    *("--start-id", str(UPLOAD_FIRST_ID + (first + i) * rows), "--output", str(path)),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        files.append(path)
    return files


def remove_uploaded(url: str) -> None:
    """Delete the records earlier uploads added, so the prepared database is reused next time."""
    if ab.record_count(url) is None:
        return
    first = f"S{UPLOAD_FIRST_ID:09d}"
    ab.psql(
        url,
        f"DELETE FROM {ab.TABLE} WHERE _key >= '{first}'",
    )


def start_qcluster(env: dict[str, str], nice: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            [ab.PY, str(ab.ROOT / "manage.py"), "qcluster"],
            cwd=ab.ROOT,
            env={**env, "PIPELINE_NICE": str(nice), "Q_POLL": "0.2"},
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def mixed(args: argparse.Namespace, env: dict[str, str], url: str) -> None:
    interval = 60 / args.uploads_per_minute
    per_phase = max(1, int(args.duration // interval))
    print(
        f"\nMIXED: {args.readers} readers of the first page ({args.clients} client processes), "
        f"{args.duration:g} s alone then {args.duration:g} s beside {per_phase} uploads of {args.upload_rows:,} rows "
        f"(one every {interval:g} s, qcluster with {env.get('Q_WORKERS', '2')} workers)"
    )
    header = (
        f"{'nice':>4s} {'phase':>6s} {'p50':>6s} {'p95':>6s} {'p99':>6s} {'mean':>6s} {'req/s':>6s} {'err':>4s} | "
        f"{'busy p50':>8s} {'busy p95':>8s} {'n':>5s} | CPU s: srv qcluster pg cli, busy, others | uploads"
    )
    counter = 0
    combos = [(server, nice) for server in args.server for nice in args.nice]
    for rnd in range(args.rounds):
        for server, nice in combos:
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"round {rnd + 1}, server {server.label}, PIPELINE_NICE={nice}, load average {load}")
            print(header)
            files = upload_files(args.upload_rows, per_phase, counter)
            counter += per_phase
            server.start(env)
            cluster = start_qcluster(env, nice, ab.OUT / f"conc-qcluster-{nice}.log")
            results = {}
            try:
                reader = token_for(server.port, ab.USERNAME)
                writer = token_for(server.port, UPLOADER)
                time.sleep(3)  # the cluster's workers are up
                for phase in ("alone", "mixed"):
                    pids = server.pids()
                    meter = ab.CpuMeter(
                        url, {"server": lambda pids=pids: pids, "qcluster": lambda c=cluster: process_tree(c.pid)}
                    )
                    sampler = PgSampler(url)
                    sampler.start()
                    marks = LogMarks(server, args.warmup, args.duration)
                    uploader = None
                    if phase == "mixed":
                        start = time.perf_counter() + 0.2 + args.warmup
                        uploader = Uploader(server.port, writer, files, start, interval)
                        uploader.start()
                    outcome = ab.drive(
                        server.port,
                        FIRST_PAGE,
                        reader,
                        concurrency=args.readers,
                        clients=args.clients,
                        warmup=args.warmup,
                        duration=args.duration,
                    )
                    pg = sampler.stop()
                    split = meter.stop(clients=outcome.cpu, postgres=sampler.cpu())
                    srv, posts = marks.times("GET"), marks.times("POST")
                    if uploader is not None:
                        uploader.join()
                        if uploader.error:
                            raise SystemExit(uploader.error)
                        uploader.wait_runs(time.monotonic() + args.drain)
                    results[phase] = (outcome, split, uploader, pg, sampler.lock_waits, srv, posts, marks.conns)
            finally:
                ab.stop(cluster)
                server.stop()
            for phase, (outcome, split, uploader, pg, waits, srv, posts, conns) in results.items():
                lat = outcome.latencies
                busy: list[float] = []
                quiet: list[float] = []
                info = ""
                if uploader is not None:
                    windows = [(u.started, u.finished) for u in uploader.uploads if u.started and u.finished]
                    during = [any(a <= t <= b for a, b in windows) for t in outcome.stamps]
                    busy = [la for la, d in zip(lat, during, strict=True) if d]
                    quiet = [la for la, d in zip(lat, during, strict=True) if not d]
                    info = "; ".join(
                        f"{u.rows:,} rows {u.status} in {u.finished - u.started:.1f} s"
                        if u.started and u.finished
                        else f"{u.status or 'not finished'}"
                        for u in uploader.uploads
                    )
                c50, c95, c99 = pcts(lat)
                b50, b95, _ = pcts(busy) if busy else (float("nan"),) * 3
                s = split.seconds
                print(
                    f"{nice:>4d} {phase:>6s} {ms(c50):>6s} {ms(c95):>6s} {ms(c99):>6s} {ms(mean(lat)):>6s} "
                    f"{len(lat) / args.duration:6.0f} {outcome.errors:4d} | {ms(b50):>8s} {ms(b95):>8s} "
                    f"{len(busy):5d} | {s['server']:.0f} {s.get('qcluster', 0):.0f} {s['postgres']:.0f} "
                    f"{s['clients']:.0f}, {split.busy_pct:.0f}%, {split.others_pct:.0f}% | {info}"
                )
                s50, s95, _ = pcts(srv)
                print(
                    f"{'':>11s} in the server: GET p50 {ms(s50)} p95 {ms(s95)} mean {ms(mean(srv))} ms"
                    + (f"; upload POSTs {', '.join(ms(t) for t in posts)} ms" if posts else "")
                    + f"; connections per worker {'/'.join(map(str, conns))}"
                )
                if busy and quiet:
                    (b50, b95, _), (q50, q95, _) = pcts(busy), pcts(quiet)
                    print(
                        f"{'':>11s} reads while a run was processed / the other reads of the phase: "
                        f"p50 {ms(b50)} / {ms(q50)} = {b50 / q50:.2f}, p95 {ms(b95)} / {ms(q95)} = {b95 / q95:.2f}"
                    )
                print(f"{'':>11s} Postgres sessions: {pg}")
                for query, n in waits.most_common(2):
                    print(f"{'':>11s} waiting on a lock ({n} samples): {query}")
            alone, mixed_ = results["alone"][0].latencies, results["mixed"][0].latencies
            (a50, a95, a99), (m50, m95, m99) = pcts(alone), pcts(mixed_)
            print(
                f"{nice:>4d} {'ratio':>6s} {m50 / a50:6.2f} {m95 / a95:6.2f} {m99 / a99:6.2f} "
                f"{mean(mixed_) / mean(alone):6.2f}  (mixed / alone, same round)"
            )
            sys.stdout.flush()


# --- Main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["high", "mixed"])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_API_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dataflow_apibench"),
        help="Postgres database to use; recreated unless it already holds --records records.",
    )
    parser.add_argument("--duration", type=float, default=None, help="measured seconds (high 30, mixed 60)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument(
        "--server",
        type=parse_server,
        action="append",
        help="gunicorn 'WORKERSxTHREADS [options]', e.g. '2x2 --keep-alive 0' (repeatable; default 4x1)",
    )
    parser.add_argument("--concurrency", type=int, default=50, help="high: connections (default 50)")
    parser.add_argument("--readers", type=int, default=20, help="mixed: reading connections (default 20)")
    parser.add_argument("--upload-rows", type=int, default=20_000, help="mixed: rows per upload (default 20,000)")
    parser.add_argument("--uploads-per-minute", type=float, default=3.0, help="mixed (default 3)")
    parser.add_argument("--nice", type=int, action="append", help="mixed: PIPELINE_NICE values (default 0)")
    parser.add_argument("--drain", type=float, default=120.0, help="mixed: most seconds to wait for the runs")
    args = parser.parse_args()
    args.server = args.server or [Server(4, 1)]
    args.nice = args.nice or [0]
    args.duration = args.duration or (30.0 if args.scenario == "high" else 60.0)

    url = args.database_url
    data_dir = ab.OUT / "api-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**ab.server_env(url, data_dir), "API_THROTTLE_UPLOADS": "100000/second"}
    remove_uploaded(url)
    prepared = ab.prepare(url, args.records, env, index=True)
    ab.make_viewer(env)
    ab.make_viewer(env, UPLOADER, "INGESTER")
    print(f"records={args.records:,} ({prepared}); database {urlparse(url).path.lstrip('/')}")
    print(ab.machine_facts(url))
    if args.scenario == "high":
        high(args, env, url)
    else:
        try:
            mixed(args, env, url)
        finally:
            remove_uploaded(url)


if __name__ == "__main__":
    main()
