"""Console data page benchmark: a filtered, sorted page of a dataset of N records, first and deep.

Usage::

    python bench/data_page_bench.py --records 100000 [--repeat 20]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dataflow_pagebench python bench/data_page_bench.py

Creates a throw-away test database from ``DATABASE_URL`` (Django's
``test_`` prefix; SQLite by default), applies ``bench/sales.schema.json``,
ingests ``--records`` generated rows (``bench/generate_csv.py``, through the
real pipeline), marks ``country`` and ``value`` ``indexed`` (as
docs/console.md advises for the columns a data page filters and sorts by;
``--no-index`` leaves them plain) and builds their indexes, then asks ``/admin/data/sales/`` as a superuser, through
Django's test client (no HTTP server), for:

* the first page, unfiltered, in key order;
* the first page of ``country=FR`` sorted by ``-value``, and by ``value``
  (at 1M records, too many for facets);
* the first page of ``country=FR&value__gte=900`` sorted by ``-value``, with
  its facets counted (at 1M records, ~15,000 records in the view);
* the same view ``--records``/2 records deep, reached with the page's own
  keyset position (the ``_next`` of the record before it);
* a search over the text fields.

It prints the median and the 90th percentile over ``--repeat`` requests,
and the database is dropped at the end. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The test settings: plain static files (no collected manifest needed) and fast password hashing.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataflow.settings.test")


# The columns the measured view filters and sorts by.
INDEXED = ("country", "value")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--keep", action="store_true", help="keep the test database (and its records) for another run with --reuse"
    )
    parser.add_argument("--no-index", action="store_true", help="do not mark country and value indexed")
    parser.add_argument("--reuse", action="store_true", help="measure the records a --keep run left (no ingestion)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from ingestion.schema import schema_loads
    from ingestion.selectors import schema_spec
    from ingestion.services.datasets import dataset_apply
    from processing.data_page import data_ordering_parse, data_view, position_encode
    from processing.record_indexes import record_indexes_sync
    from processing.record_queries import record_position, records_rows
    from processing.record_tables import table_sql
    from processing.services.runs import file_ingest

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    if args.reuse:
        connection.creation.create_test_db(verbosity=0, autoclobber=False, keepdb=True)
    else:
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        schema = json.loads((ROOT / "bench/sales.schema.json").read_text())
        dataset = dataset_apply(spec=schema_loads(json.dumps(schema))).dataset
        if args.reuse:
            print(f"reusing the records a --keep run left ({connection.vendor})")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "sales.csv"
                generate = [sys.executable, str(ROOT / "bench/generate_csv.py"), "--rows", str(args.records)]
                subprocess.run([*generate, "--output", str(path)], check=True)
                started = time.perf_counter()
                with path.open("rb") as fh:
                    run = file_ingest(dataset=dataset, source=fh, original_name="sales.csv")
                elapsed = time.perf_counter() - started
                print(f"ingested {run.rows_inserted:,} records in {elapsed:.1f} s ({connection.vendor})")

        # The indexes after the load (as an operator adds them to a dataset that has grown), then fresh statistics.
        for f in schema["fields"]:
            f["indexed"] = f["name"] in INDEXED and not args.no_index
        started = time.perf_counter()
        dataset = dataset_apply(spec=schema_loads(json.dumps(schema))).dataset  # builds or drops the indexes
        record_indexes_sync(dataset)  # (nothing left to do, unless an earlier run was stopped half-way)
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute(f"VACUUM ANALYZE {table_sql(dataset.slug)}")
        indexes = f"indexed: {', '.join(INDEXED)}" if not args.no_index else "no field index"
        print(f"{indexes} (schema, indexes and statistics in {time.perf_counter() - started:.1f} s)")

        user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
            "bench", "bench@example.com", "bench-password-0123"
        )
        client = Client()
        client.force_login(user)
        url = f"/admin/data/{dataset.slug}/"

        dataset.refresh_from_db()
        assert dataset.current_schema is not None
        spec = schema_spec(dataset.current_schema)
        ordering = data_ordering_parse(spec, "-value")
        middle = list(
            records_rows(data_view(dataset, spec, filters=[("country", "FR")], ordering=ordering), spec)[
                max(args.records // 32 - 1, 0) : max(args.records // 32, 1)
            ]
        )
        deep = position_encode(record_position(middle[0], ordering)) if middle else ""

        scenarios = {
            "first page, key order": {},
            # 1/16 of the records: more than the facets' bound (FACET_MAX_ROWS), so no facets are counted.
            "country=FR, -value": {"country": "FR", "_sort": "-value"},
            "country=FR, value": {"country": "FR", "_sort": "value"},
            # ~1.5 % of the records: under the bound, so the facets are counted too.
            "country=FR, value>=900, -value, facets": {"country": "FR", "value__gte": "900", "_sort": "-value"},
            "country=FR, -value, deep": {"country": "FR", "_sort": "-value", "_next": deep},
            "search 'example'": {"_search": "example"},
        }
        print(f"{'scenario':32} {'p50 ms':>8} {'p90 ms':>8}")
        for name, query in scenarios.items():
            response = client.get(url, query)
            assert response.status_code == 200, response.content[:500]
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                client.get(url, query)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
            print(f"{name:32} {statistics.median(times):8.1f} {p90:8.1f}")
    finally:
        if args.keep:
            print(f"kept the database {connection.settings_dict['NAME']}: measure it again with --reuse")
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
