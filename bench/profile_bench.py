"""Cost of profiling runs (docs/quality.md): fresh loads with and without the profile, side by side.

Usage::

    python bench/profile_bench.py --rows 200000 [--rounds 2] [--database-url postgres://...]

On the ingest benchmark's generated file (bench/generate_csv.py, seed 1), each
round loads it into two new, empty datasets of the same schema: once with
``PIPELINE_PROFILE=true`` (the default) and once with ``false``, in
alternating order (the machine is noisy). Prints each load's wall and CPU
time, then the medians and the profile's share of the load time. Figures
only: nothing is asserted. Drops and recreates the database it is given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import MANAGE, database_fresh  # sibling scripts, not a package
from ingest_bench import OUT, SCHEMA, generate, timed_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dataflow_profile_bench"),
    )
    args = parser.parse_args()
    env = database_fresh(args.database_url, OUT / f"profile-data-{args.rows}")
    base = generate(args.rows)
    env["MAX_UPLOAD_SIZE"] = str(2 * base.stat().st_size + 1)
    schema = json.loads(SCHEMA.read_text())
    print(f"\nrows={args.rows:,}  file={base.stat().st_size / 1e6:.1f} MB  rounds={args.rounds}")
    print(f"{'load':28s} {'wall s':>8s} {'cpu s':>8s}  result")
    times: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.rounds):
        for profile in (True, False) if i % 2 == 0 else (False, True):
            slug = f"sales_{'on' if profile else 'off'}_{i}"
            path = OUT / f"{slug}.schema.json"
            path.write_text(json.dumps({**schema, "slug": slug}))
            subprocess.run([*MANAGE, "dataset_apply", str(path)], env=env, check=True, stdout=subprocess.DEVNULL)
            run_env = {**env, "PIPELINE_PROFILE": "true" if profile else "false"}
            seconds, _, out, cpu = timed_rss([*MANAGE, "ingest_csv", "--dataset", slug, "--json", str(base)], run_env)
            r = json.loads(out)
            times[profile].append(seconds)
            cpus[profile].append(cpu)
            label = f"round {i + 1}, profile {'on' if profile else 'off'}"
            print(f"{label:28s} {seconds:8.2f} {cpu:8.2f}  {r['status']}: ins {r['rows_inserted']:,}")
            sys.stdout.flush()
    on, off = statistics.median(times[True]), statistics.median(times[False])
    cpu_on, cpu_off = statistics.median(cpus[True]), statistics.median(cpus[False])
    print(f"\nmedian wall: profile on {on:.2f} s, off {off:.2f} s: profiling adds {(on - off) / off:+.1%} to the load")
    print(f"median cpu:  profile on {cpu_on:.2f} s, off {cpu_off:.2f} s: {(cpu_on - cpu_off) / cpu_off:+.1%}")


if __name__ == "__main__":
    main()
