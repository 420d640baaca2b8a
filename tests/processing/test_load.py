"""The Postgres load path's planner safeguards (processing/pipeline/load.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from ingestion.models import Dataset
from processing.models import Record, RunStatus
from processing.pipeline.load import ANALYZE_MIN_ROWS, _analyze_when_grown
from processing.services import file_ingest
from tests.conftest import SALES_HEADER, sales_row

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the staging path runs on Postgres only"),
]

TABLE = Record._meta.db_table


def reltuples() -> float:
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [TABLE])
        return cur.fetchone()[0]


def load(sales: Dataset, csv_file: Callable[..., Path], n: int) -> None:
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, n + 1))]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name=path.name, chunk_size=7)
    assert run.status == RunStatus.SUCCEEDED


def test_statistics_are_refreshed_once_a_run_has_doubled_the_table(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    load(sales, csv_file, 30)
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {TABLE}")
        assert reltuples() == 30

        _analyze_when_grown(cur, TABLE, ANALYZE_MIN_ROWS - 1)  # too few rows added to matter
        _analyze_when_grown(cur, TABLE, 60)  # below the minimum as well
        assert reltuples() == 30

    load(sales, csv_file, 45)  # 15 more records, statistics untouched below the minimum
    assert reltuples() == 30
    with connection.cursor() as cur:
        _analyze_when_grown(cur, TABLE, ANALYZE_MIN_ROWS)  # "added" more than twice the 30 known
    assert reltuples() == 45


def test_chunks_load_the_same_with_the_stage_analysed_each_time(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    load(sales, csv_file, 20)
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i, quantity=2 if i % 4 == 0 else 1) for i in range(1, 26))]))
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name=path.name, chunk_size=6)

    assert (run.rows_inserted, run.rows_updated, run.rows_unchanged) == (5, 5, 15)
    assert Record.objects.filter(dataset=sales).count() == 25
