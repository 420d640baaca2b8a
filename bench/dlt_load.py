"""Load a generated sales CSV with dlt, for bench/ingest_bench.py's comparison (not part of DataFlow).

Usage::

    python bench/dlt_load.py FILE --database-url postgres://… --pipelines-dir DIR

dlt's Arrow path: the file is read in record batches by ``pyarrow.csv``
(streamed, every column as text, rows with the wrong number of values
skipped), each batch handed to a dlt resource, and loaded into PostgreSQL
(schema ``dlt_sales``) as CSV with ``COPY``, merged by ``id``
(``write_disposition="merge"``; dlt's default delete-insert strategy). dlt
validates and converts nothing here, unlike DataFlow's pipeline: it is a
reference for loading and merging by key, not for the whole job. Prints
one JSON object: rows read and the seconds spent.

Needs ``pip install -r bench/requirements.txt`` (dlt with its PostgreSQL
extra, and pyarrow), best in a virtualenv of its own.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import dlt
import pyarrow as pa
from pyarrow import csv

COLUMNS = 9  # bench/generate_csv.py's header


def batches(path: Path, counter: list[int]) -> Iterator[pa.Table]:
    with path.open("rb") as fh:
        header = fh.readline().decode().strip().split(",")
    assert len(header) == COLUMNS, header
    reader = csv.open_csv(
        path,
        read_options=csv.ReadOptions(block_size=16 << 20),
        parse_options=csv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda row: "skip"),
        convert_options=csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())),
    )
    for batch in reader:
        counter[0] += batch.num_rows
        yield pa.Table.from_batches([batch])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    args = parser.parse_args()

    # dlt insists on a password; a server with trust authentication ignores it.
    url = urlparse(args.database_url)
    if url.password is None:
        url = url._replace(netloc=f"{url.username or 'postgres'}:unused@{url.hostname}:{url.port or 5432}")
    start = time.perf_counter()
    counter = [0]
    resource = dlt.resource(
        batches(args.file, counter), name="sales", write_disposition="merge", primary_key="id", file_format="csv"
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_sales",
        pipelines_dir=args.pipelines_dir,
        destination=dlt.destinations.postgres(credentials=urlunparse(url)),
        dataset_name="dlt_sales",
    )
    info = pipeline.run(resource)
    info.raise_on_failed_jobs()
    print(json.dumps({"rows_read": counter[0], "seconds": round(time.perf_counter() - start, 2)}))


if __name__ == "__main__":
    main()
