"""Every CSV file we write reads back exactly, row for row, with csv, pandas and Postgres COPY.

Values with lone CRs, line breaks, quotes, delimiters, spaces, control and
non-BMP characters go in through the pipeline; each real writer (the
export commands, the processed file, the reload of fixed rejected rows)
writes them to a real file, and the file is read back with each reader.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from ingestion.models import Dataset
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from processing.exports import csv_safe
from processing.models import RejectedRow, Run
from processing.services.rejects import rejected_rows_reload
from tests.csv_readers import TRICKY_VALUES, assert_round_trips, notes_source, read_with_csv
from tests.records import records

pytestmark = pytest.mark.django_db
HEADER = ["id", "text", "count", "flag"]


def run_command(*args: Any, **options: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def ingest(path: Path) -> Run:
    result = json.loads(run_command("ingest_csv", str(path), dataset="notes", json=True))
    return Run.objects.get(pk=result["id"])


def stored_texts() -> list[str | None]:
    # Whole documents: SQLite's JSON_EXTRACT would turn the text '""' into ''.
    return [r.data["text"] for r in records(Dataset.objects.get(slug="notes")).order_by("key")]


@pytest.fixture
def loaded(notes: Dataset, csv_file: Callable[..., Path]) -> Run:
    """Every tricky value stored as a record, plus one record whose text is null."""
    run = ingest(csv_file(notes_source([*TRICKY_VALUES, ""])))
    assert run.rows_rejected == 0
    return run


@pytest.fixture
def rejected(notes: Dataset, csv_file: Callable[..., Path]) -> Run:
    """Every tricky value in a row rejected for its count."""
    run = ingest(csv_file(notes_source(TRICKY_VALUES, count="many")))
    assert run.rows_rejected == len(TRICKY_VALUES)
    return run


def test_the_pipeline_stores_the_tricky_values_as_they_were(loaded: Run) -> None:
    assert stored_texts() == [*TRICKY_VALUES, None]


def test_the_records_export_reads_back_exactly_with_every_reader(csv_reader: str, loaded: Run, tmp_path: Path) -> None:
    target = tmp_path / "records.csv"
    run_command("export_records", dataset="notes", output=str(target))

    stored = [r.data for r in records(Dataset.objects.get(slug="notes")).order_by("key")]
    # Text cells that a spreadsheet would run as a formula (a leading CR, tab, = …)
    # are exported with a leading ' on purpose; everything else is as stored.
    expected = [[d["id"], None if d["text"] is None else csv_safe(d["text"]), str(d["count"]), "true"] for d in stored]
    assert len(expected) == len(TRICKY_VALUES) + 1
    assert_round_trips(target, HEADER, expected, reader=csv_reader)


def test_the_rejected_rows_export_reads_back_exactly_with_every_reader(
    csv_reader: str, rejected: Run, tmp_path: Path
) -> None:
    target = tmp_path / "rejected.csv"
    run_command("export_rejected", run=rejected.pk, output=str(target))

    expected = []
    for row in RejectedRow.objects.filter(run=rejected).order_by("line_number"):
        message = "; ".join(f"{f}: {', '.join(m)}" for f, m in row.errors.items())
        expected.append([str(row.line_number), message, *(row.raw[h] for h in HEADER)])
    assert [r[3] for r in expected] == TRICKY_VALUES
    assert_round_trips(target, ["_line", "_errors", *HEADER], expected, reader=csv_reader)


def test_the_processed_file_reads_back_exactly_with_every_reader(csv_reader: str, loaded: Run, data_dir: Path) -> None:
    processed = data_dir / loaded.summary["processed_file"]

    stored = records(Dataset.objects.get(slug="notes")).order_by("source_line")
    expected = [[str(r.source_line), r.data["id"], r.data["text"], str(r.data["count"]), "true"] for r in stored]
    assert_round_trips(processed, ["_line", *HEADER], expected, reader=csv_reader)


def test_fixed_rejected_rows_with_line_breaks_in_values_load_again(rejected: Run) -> None:
    rows = list(RejectedRow.objects.filter(run=rejected))
    for row in rows:
        row.raw["count"] = "7"
        row.save(update_fields=["raw"])

    new_run, loaded = rejected_rows_reload(run=rejected, row_ids=[r.pk for r in rows])

    assert (new_run.rows_read, new_run.rows_rejected, loaded) == (len(rows), 0, len(rows))
    assert stored_texts() == TRICKY_VALUES


def test_a_one_column_export_quotes_a_value_that_would_end_a_postgres_copy(
    csv_reader: str, csv_file: Callable[..., Path], tmp_path: Path
) -> None:
    spec = {
        "slug": "codes",
        "name": "Codes",
        "key": ["code"],
        "fields": [{"name": "code", "type": "string", "required": True}],
    }
    dataset_apply(spec=schema_parse(spec))
    run_command("ingest_csv", str(csv_file('code\r\n"\\."\r\nafter\r\n')), dataset="codes")
    target = tmp_path / "codes.csv"
    run_command("export_records", dataset="codes", output=str(target))

    assert target.read_bytes() == b'code\r\n"\\."\r\nafter\r\n'
    assert_round_trips(target, ["code"], [["\\."], ["after"]], reader=csv_reader)


def test_rows_split_by_an_unquoted_cr_are_rejected_with_their_line_numbers(
    notes: Dataset, csv_file: Callable[..., Path], tmp_path: Path
) -> None:
    # An unquoted CR ends a row in every CSV reader: the two halves are rejected, each with its line.
    run = ingest(csv_file(b"id,text,count,flag\r\nN1,ok,1,yes\r\nN2,half\rother half,1,yes\r\nN3,ok,1,yes\r\n"))
    target = tmp_path / "rejected.json"
    run_command("export_rejected", run=run.pk, format="json", output=str(target))

    rejected = json.loads(target.read_text())
    assert [(r["line"], r["raw"]["id"]) for r in rejected] == [(3, "N2"), (4, "other half")]
    csv_target = tmp_path / "rejected.csv"
    run_command("export_rejected", run=run.pk, output=str(csv_target))
    assert [row[0] for row in read_with_csv(csv_target.read_bytes())[1]] == ["3", "4"]
