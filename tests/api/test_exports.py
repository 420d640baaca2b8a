"""Exports: every record, streamed as CSV (formula cells neutralised) or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from ingestion.models import Dataset, DatasetRole
from processing.exports import csv_safe
from processing.models import Run
from tests.csv_readers import TRICKY_VALUES, assert_round_trips, notes_source
from tests.factories import UserFactory
from tests.records import records

from .conftest import API, bearer, grant, sales_csv

pytestmark = pytest.mark.django_db
EXPORT = f"{API}/datasets/sales/export/"


def content(response: Any) -> str:
    assert response.status_code == 200, response
    assert response.streaming
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def risky(sales: Dataset, ingest: Callable[..., Run]) -> Run:
    return ingest(
        sales,
        sales_csv(
            [
                'A,2024-01-01,books,5,1,a@example.com,US,"=HYPERLINK(""http://evil"")",yes',
                "B,2024-01-01,books,,1,b@example.com,US,@SUM(A1),no",
                "C,2024-01-01,books,,1,c@example.com,US,-5,no",
            ]
        ),
    )


def test_csv_export_neutralises_formula_cells_but_not_plain_numbers(as_viewer: APIClient, risky: Run) -> None:
    response = as_viewer.get(EXPORT, {"format": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="sales.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(content(response))))
    assert [r["description"] for r in rows] == ['\'=HYPERLINK("http://evil")', "'@SUM(A1)", "-5"]
    assert rows[0]["value"] == "5"


def test_csv_is_the_default_format(as_viewer: APIClient, risky: Run) -> None:
    assert content(as_viewer.get(EXPORT)).startswith("id,timestamp,category")


def test_json_export_keeps_the_stored_values(as_viewer: APIClient, risky: Run) -> None:
    response = as_viewer.get(EXPORT, {"format": "json"})

    assert response["Content-Type"] == "application/json"
    records = json.loads(content(response))
    assert [r["id"] for r in records] == ["A", "B", "C"]
    assert records[0]["description"] == '=HYPERLINK("http://evil")'
    assert records[1]["is_active"] is False


def test_parquet_export_has_typed_columns(as_viewer: APIClient, risky: Run) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    response = as_viewer.get(EXPORT, {"format": "parquet"})

    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert 'filename="sales.parquet"' in response["Content-Disposition"]
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert table.column_names == [
        "_key",
        "id",
        "timestamp",
        "category",
        "value",
        "quantity",
        "email",
        "country",
        "description",
        "is_active",
    ]
    assert table.schema.field("quantity").type == pa.int64()
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("is_active").type == pa.bool_()
    rows = table.to_pylist()
    assert [r["_key"] for r in rows] == ["A", "B", "C"]
    assert rows[0]["value"] == "5" and rows[1]["value"] is None
    assert rows[0]["description"] == '=HYPERLINK("http://evil")'
    assert rows[2]["is_active"] is False
    assert rows[0]["timestamp"].isoformat() == "2024-01-01T00:00:00+00:00"


@pytest.mark.parametrize("params", [{"format": "xlsx"}, {"format": "csv", "columns": "id"}])
def test_unknown_formats_and_parameters_are_a_400(as_viewer: APIClient, params: dict[str, str]) -> None:
    assert as_viewer.get(EXPORT, params).status_code == 400


def test_an_accept_header_does_not_stop_the_export(as_viewer: APIClient, risky: Run) -> None:
    assert content(as_viewer.get(EXPORT, {"format": "csv"}, HTTP_ACCEPT="text/csv")).startswith("id,")


@pytest.mark.parametrize("persona", ["stranger"], indirect=True)
def test_a_stranger_cannot_export(persona: APIClient, risky: Run) -> None:
    assert persona.get(EXPORT).status_code == 404


def test_csv_export_of_values_with_line_breaks_reads_back_exactly_with_every_reader(
    csv_reader: str, notes: Dataset, ingest: Callable[..., Run], tmp_path: Path
) -> None:
    run = ingest(notes, notes_source([*TRICKY_VALUES, ""]).decode())
    assert run.rows_rejected == 0
    user = UserFactory()
    grant(notes, user, DatasetRole.VIEWER)

    target = tmp_path / "notes.csv"
    target.write_text(content(bearer(user).get(f"{API}/datasets/notes/export/", {"format": "csv"})), newline="")

    stored = [r.data for r in records(notes).order_by("key")]
    expected = [[d["id"], None if d["text"] is None else csv_safe(d["text"]), str(d["count"]), "true"] for d in stored]
    assert len(expected) == len(TRICKY_VALUES) + 1
    assert_round_trips(target, ["id", "text", "count", "flag"], expected, reader=csv_reader)
