"""Validation benchmark: the row validator and the columnar one, side by side on the same rows.

Usage::

    python bench/validate_bench.py [--rows 200000] [--invalid-rate 0.1] [--chunk-size 10000]

Generates messy sales rows (bench/generate_csv.py, seed 1), reads them with
the pipeline's reader and validates every chunk twice in this one process:
row by row (``chunks.chunk_validate_rows``, ``RowValidator``) and a chunk at
a time on columns (``chunks.chunk_validate``, ``ColumnarValidator``). It
prints rows/s by wall clock and by CPU time (polars may use a second core),
the ratio, and whether both gave the same rows. No database is needed.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataflow.settings.base")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret")
os.environ.setdefault("JWT_SIGNING_KEY", "benchmark-only-jwt-signing-key-0123456789")


def generated_rows(rows: int, invalid_rate: float) -> tuple[list[str], list[Any]]:
    """The generator's rows, read back by the pipeline's CSV reader."""
    from ingestion.reader import reader_open

    spec = importlib.util.spec_from_file_location("generate_csv", ROOT / "bench" / "generate_csv.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    out = io.StringIO()
    generator.generate(out, rows=rows, seed=1, invalid_rate=invalid_rate)
    reader = reader_open(io.BytesIO(out.getvalue().encode()), format="csv", encoding="utf-8", delimiter=",")
    header = reader.read_header()
    assert header is not None
    return header, list(reader.rows())


def timed(
    validate: Callable[[Any, list[Any]], Any], validator: Any, chunks: list[list[Any]]
) -> tuple[float, float, list]:
    """Validate every chunk; return (wall seconds, CPU seconds, results)."""
    validate(validator, chunks[0][:100])  # warm up: compiled regexes, polars' thread pool
    wall, cpu = time.perf_counter(), time.process_time()
    results = [validate(validator, chunk) for chunk in chunks]
    return time.perf_counter() - wall, time.process_time() - cpu, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--invalid-rate", type=float, default=0.1, help="share of rows with a defect (default 0.1)")
    parser.add_argument("--chunk-size", type=int, default=10_000, help="rows per chunk (a run's default)")
    args = parser.parse_args()

    import django

    django.setup()
    from ingestion.schema import schema_parse
    from processing.pipeline.chunks import chunk_validate, chunk_validate_rows
    from processing.pipeline.validate import RowValidator, columns_map
    from tests.conftest import SALES_SCHEMA

    header, rows = generated_rows(args.rows, args.invalid_rate)
    schema = schema_parse(SALES_SCHEMA)
    chunks = [rows[i : i + args.chunk_size] for i in range(0, len(rows), args.chunk_size)]
    # As the pipeline does (chunks._heap_freeze): full collections would walk Django's heap again and again.
    gc.freeze()
    figures = {}
    outputs = {}
    for name, validate in (("rows", chunk_validate_rows), ("columns", chunk_validate)):
        validator = RowValidator(schema, columns_map(schema, header), 65536)
        wall, cpu, results = timed(validate, validator, chunks)
        figures[name] = (wall, cpu)
        outputs[name] = [(r.valid, r.rejected) for r in results]
        gc.freeze()  # what one pass keeps (to compare) must not slow the next one's collections
        valid = sum(len(r.valid) for r in results)
        print(
            f"{name:8} {len(rows):>9,} rows ({valid:,} valid)  {wall:6.2f} s wall  {len(rows) / wall:>9,.0f} rows/s"
            f"  {cpu:6.2f} s CPU  {len(rows) / cpu:>9,.0f} rows/CPU-s"
        )
    (row_wall, row_cpu), (col_wall, col_cpu) = figures["rows"], figures["columns"]
    print(f"columns / rows: {row_wall / col_wall:.2f}x by wall clock, {row_cpu / col_cpu:.2f}x by CPU time")
    print(f"same results: {'yes' if outputs['rows'] == outputs['columns'] else 'NO'}")


if __name__ == "__main__":
    main()
