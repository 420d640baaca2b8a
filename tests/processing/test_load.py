"""The Postgres load path (processing/pipeline/load.py): planner safeguards and the merge into an empty dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection, transaction

from ingestion.models import Dataset
from ingestion.selectors import schema_spec
from processing.models import Run, RunStatus
from processing.pipeline.load import ANALYZE_MIN_ROWS, _analyze_when_grown, dataset_is_empty, records_load
from processing.pipeline.validate import RowValidator, ValidRow, columns_map
from processing.record_tables import table_sql
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, sales_row
from tests.records import records

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the staging path runs on Postgres only"),
]

TABLE = table_sql("sales")


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
    assert records(sales).count() == 25


def test_a_first_load_takes_the_merge_without_look_ups_and_counts_the_same(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    assert dataset_is_empty(sales)
    load(sales, csv_file, 20)  # chunks of 7: three merges into a dataset that was empty
    assert not dataset_is_empty(sales)
    run = Run.objects.filter(dataset=sales).latest("pk")
    assert (run.rows_inserted, run.rows_updated, run.rows_unchanged) == (20, 0, 0)
    assert records(sales).filter(first_run_id=run.pk, last_run_id=run.pk).count() == 20


@pytest.mark.parametrize("into_empty", [True, False])
def test_rows_another_run_loaded_meanwhile_count_as_updated_or_unchanged_either_way(
    sales: Dataset, csv_file: Callable[..., Path], into_empty: bool
) -> None:
    load(sales, csv_file, 10)  # S1…S10, as if loaded by another run after this one looked
    run = Run.objects.filter(dataset=sales).latest("pk")
    schema = schema_spec(run.schema)
    validator = RowValidator(schema, columns_map(schema, SALES_HEADER.split(",")), 65536)
    # S6…S15: five exist (S7 and S9 with a new quantity), five are new.
    rows = [validator.validate(i, sales_row(i, quantity=2 if i % 2 else 1).split(",")) for i in range(6, 16)]
    assert all(isinstance(r, ValidRow) for r in rows)

    with transaction.atomic():
        counts = records_load(run, schema, rows, into_empty=into_empty)  # type: ignore[arg-type]

    assert (counts.inserted, counts.updated, counts.unchanged) == (5, 2, 3)
    assert records(sales).count() == 15
    assert records(sales).get(key="S7").data["quantity"] == 2
    assert records(sales).get(key="S8").data["quantity"] == 1


def test_the_seen_keys_table_survives_a_database_crash(sales: Dataset) -> None:
    """Postgres empties UNLOGGED tables when it recovers from a crash; a resumed run needs its seen keys."""
    from processing.pipeline.load import SeenValues

    seen = SeenValues(987654)
    seen.create()
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", [seen.table])
            assert cur.fetchone()[0] == "p"  # permanent (WAL-logged), not "u"
    finally:
        seen.drop()


def test_text_with_copy_s_special_characters_is_stored_exactly_and_then_unchanged(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    """Backslashes, tabs, line breaks and a literal \\N travel in COPY's text format, escaped once."""
    tricky = ["back\\slash", "tab\there", "two\nlines", "cr\rhere", "\\N", "\\\\t", "end\\"]
    rows = [f'"S\\{i}\t",2024-01-02T03:04:05Z,books,1,1,u@example.com,us,"{text}",yes' for i, text in enumerate(tricky)]
    # The same key again, in a later chunk: rejected as a duplicate through the seen-keys table.
    rows.append('"S\\0\t",2024-01-02T03:04:05Z,books,2,1,u@example.com,us,again,yes')
    path = csv_file("\n".join([SALES_HEADER, *rows]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name=path.name, chunk_size=3)

    assert (run.rows_inserted, run.rows_rejected) == (len(tricky), 1)
    assert run.rejected_rows.get().errors == {"__row__": ["duplicate key, first seen on line 2"]}
    stored = {r.key: r.data["description"] for r in records(sales)}
    # The id is stripped of surrounding whitespace (the schema's transform); the tab inside stays.
    assert stored == {f"S\\{i}": text for i, text in enumerate(tricky)}

    path.write_bytes(path.read_bytes() + b"\n")  # a new file, the same rows
    with path.open("rb") as fh:
        again = file_ingest(dataset=sales, source=fh, original_name=path.name, chunk_size=3)
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, len(tricky))
