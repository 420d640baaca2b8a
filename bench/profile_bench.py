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
import base64
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_bench import OUT, PY, ROOT, SCHEMA, generate, timed_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dataflow_profile_bench"),
    )
    args = parser.parse_args()
    dbname = urlparse(args.database_url).path.lstrip("/")
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin_url, "-qc", f'DROP DATABASE IF EXISTS "{dbname}"'], check=True)
    subprocess.run(["psql", admin_url, "-qc", f'CREATE DATABASE "{dbname}"'], check=True)
    data_dir = OUT / f"profile-data-{args.rows}"
    subprocess.run(["rm", "-rf", str(data_dir)], check=True)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": os.environ.get("SECRET_KEY", "benchmark-only-secret"),
        "JWT_SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", "benchmark-only-jwt-signing-key-0123456789"),
        "ENCRYPTION_KEYS": os.environ.get("ENCRYPTION_KEYS") or base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "DATAFLOW_ENV_FILE": "/nonexistent",
        "DJANGO_SETTINGS_MODULE": "dataflow.settings.base",
        "LOG_LEVEL": "WARNING",
    }
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
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
            subprocess.run([*manage, "dataset_apply", str(path)], env=env, check=True, stdout=subprocess.DEVNULL)
            run_env = {**env, "PIPELINE_PROFILE": "true" if profile else "false"}
            seconds, _, out, cpu = timed_rss([*manage, "ingest_csv", "--dataset", slug, "--json", str(base)], run_env)
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
