"""Ingestion benchmark: DataFlow's pipeline side by side with a raw ``psql \\copy``.

Usage::

    python bench/ingest_bench.py --rows 1000000 [--database-url postgres://postgres@127.0.0.1:5432/dataflow_bench]

In one run, on the same generated file (bench/generate_csv.py, seed 1, ~2 % invalid rows):

1. ``psql \\copy`` of the file into an all-text table (the floor; rows with the
   wrong number of values are left out of this copy because COPY cannot load them);
2. ``ingest_csv`` of the file into an empty dataset (fresh load);
3. the same file again (checksum no-op);
4. the same rows in a new file (a blank line added; every row unchanged);
5. the rows with 10 % of them changed;
6. when dlt can be imported (``pip install -r bench/requirements.txt``, best in
   a virtualenv of its own given with ``--dlt-python``): bench/dlt_load.py
   loads the file with dlt's Arrow path (text columns, merged by ``id``,
   no validation), then the same file again (every row merged unchanged).
   Without dlt the step is skipped with a message.

Each step runs in its own process; the script prints wall time, rows/s, the
ratio to the ``\\copy`` time and the process's peak RSS. It drops and recreates
the benchmark database it is given. Generated files are kept in bench/out/.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import MANAGE, database_fresh, dataset_apply  # a sibling script, not a package

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SCHEMA = ROOT / "bench" / "sales.schema.json"
PY = sys.executable


TIME = "/usr/bin/time"


def timed_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str, float]:
    """Run a command; return (seconds, its peak RSS in bytes, its stdout, its CPU seconds).

    Peak RSS comes from GNU time when it is installed (Debian package
    ``time``), otherwise from wait4(). Either way this process stays small:
    a forked child starts with its parent's resident pages counted. CPU is
    user + system time of the command and the processes it waited for (its
    validating children), not of the Postgres server.
    """
    use_time = os.path.exists(TIME)
    full = [TIME, "-f", "%M", "-o", str(OUT / ".rss"), *cmd] if use_time else cmd
    start = time.perf_counter()
    proc = subprocess.Popen(full, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()  # read before waiting so a full pipe cannot block the child
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.stderr.write(err)
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    kib = int((OUT / ".rss").read_text().split()[-1]) if use_time else usage.ru_maxrss
    return elapsed, kib * 1024, out, usage.ru_utime + usage.ru_stime


def generate(rows: int, *extra: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = "-".join(e.strip("-") for e in extra) if extra else "base"
    path = OUT / f"sales-{rows}-{suffix}.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        cmd = [PY, str(ROOT / "bench/generate_csv.py"), "--rows", str(rows), "--seed", "1", "--output", str(tmp)]
        subprocess.run([*cmd, *extra], check=True)
        tmp.rename(path)
    return path


def copyable(source: Path) -> Path:
    """The file without rows COPY cannot load (wrong number of values)."""
    target = source.with_name(source.stem + "-copyable.csv")
    if not target.exists():
        with source.open(newline="", encoding="utf-8") as src, target.open("w", newline="", encoding="utf-8") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            for row in csv.reader(src):
                if len(row) == 9:
                    writer.writerow(row)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dataflow_bench"),
        help="Postgres database to drop, create and use (default: dataflow_bench on 127.0.0.1).",
    )
    parser.add_argument("--chunk-size", type=int, help="passed to ingest_csv")
    parser.add_argument(
        "--dlt-python",
        default=os.environ.get("BENCH_DLT_PYTHON", PY),
        help="Python that can import dlt, for the dlt step (default: this one; skipped when it cannot)",
    )
    args = parser.parse_args()

    env = database_fresh(args.database_url, OUT / f"data-{args.rows}")
    dataset_apply(env, SCHEMA)

    base = generate(args.rows)
    same_rows = OUT / f"sales-{args.rows}-same-rows.csv"
    if not same_rows.exists():
        # A different file (checksum) holding the same rows: one more blank line.
        shutil.copyfile(base, same_rows)
        with same_rows.open("ab") as fh:
            fh.write(b"\n")
    changed = generate(args.rows, "--change-rate", "0.1", "--change-seed", "2")
    size_mb = base.stat().st_size / 1e6
    # The upload limit (200 MiB by default) also applies to ingest_csv: 5M rows are ~660 MB.
    env["MAX_UPLOAD_SIZE"] = str(max(2 * base.stat().st_size, int(env.get("MAX_UPLOAD_SIZE") or 0)))

    copy_src = copyable(base)
    columns = ", ".join(f"c{i} text" for i in range(9))
    subprocess.run(["psql", args.database_url, "-qc", f"CREATE TABLE bench_copy ({columns})"], check=True)
    copy_s, copy_rss, _, copy_cpu = timed_rss(
        ["psql", args.database_url, "-qc", f"\\copy bench_copy FROM '{copy_src}' WITH (FORMAT csv, HEADER true)"], env
    )

    ingest = [*MANAGE, "ingest_csv", "--dataset", "sales", "--json"]
    if args.chunk_size:
        ingest += ["--chunk-size", str(args.chunk_size)]
    steps = [
        ("fresh load", base),
        ("same file again", base),
        ("same rows, new file", same_rows),
        ("10% changed", changed),
    ]
    dbname = args.database_url.rsplit("/", 1)[1]
    print(f"\nrows={args.rows:,}  file={size_mb:.1f} MB  machine: {os.cpu_count()} cores  database: {dbname}")
    header = f"{'step':22s} {'wall s':>8s} {'rows/s':>10s} {'x copy':>7s} {'peak RSS MB':>12s} {'cpu s':>7s}  result"
    print(header)
    print("-" * len(header))
    floor = "psql \\copy (text)"
    copy_rate = args.rows / copy_s
    print(f"{floor:22s} {copy_s:8.2f} {copy_rate:10,.0f} {1:7.2f} {copy_rss / 1e6:12.1f} {copy_cpu:7.2f}  floor")
    for name, path in steps:
        seconds, rss, out, cpu = timed_rss([*ingest, str(path)], env)
        r = json.loads(out)
        result = (
            f"{r['status']}: read {r['rows_read']:,} ins {r['rows_inserted']:,} upd {r['rows_updated']:,} "
            f"same {r['rows_unchanged']:,} rej {r['rows_rejected']:,}"
        )
        if r["noop_of"]:
            result += f" (no-op of run {r['noop_of']})"
        rate = args.rows / seconds
        print(f"{name:22s} {seconds:8.2f} {rate:10,.0f} {seconds / copy_s:7.2f} {rss / 1e6:12.1f} {cpu:7.2f}  {result}")
        sys.stdout.flush()
    dlt_steps(args, base, env, copy_s)


def dlt_steps(args: argparse.Namespace, path: Path, env: dict[str, str], copy_s: float) -> None:
    """dlt's Arrow path on the same file: a fresh load, then the same file merged again."""
    check = subprocess.run([args.dlt_python, "-c", "import dlt, pyarrow"], capture_output=True, text=True)
    if check.returncode:
        print(f"dlt: skipped ({args.dlt_python} cannot import dlt and pyarrow; see bench/requirements.txt)")
        return
    pipelines = OUT / f"dlt-pipelines-{args.rows}"
    shutil.rmtree(pipelines, ignore_errors=True)
    cmd = [args.dlt_python, str(ROOT / "bench/dlt_load.py"), str(path), "--database-url", args.database_url]
    cmd += ["--pipelines-dir", str(pipelines)]
    for name in ("dlt fresh (arrow)", "dlt same file again"):
        seconds, rss, out, cpu = timed_rss(cmd, env)
        r = json.loads(out.strip().splitlines()[-1])
        result = f"read {r['rows_read']:,} (text columns, merged by id, not validated)"
        rate = args.rows / seconds
        print(f"{name:22s} {seconds:8.2f} {rate:10,.0f} {seconds / copy_s:7.2f} {rss / 1e6:12.1f} {cpu:7.2f}  {result}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
