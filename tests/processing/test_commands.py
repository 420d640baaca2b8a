"""The management commands as people and scripts use them."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from ingestion.models import Dataset
from processing.models import Run
from tests.conftest import SALES_HEADER, SALES_SCHEMA, SmallDisk, sales_row
from tests.records import records_total, stored_record

pytestmark = pytest.mark.django_db


def run_command(*args: Any, **options: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def sales_csv(csv_file: Callable[..., Path], rows: list[str]) -> Path:
    return csv_file("\n".join([SALES_HEADER, *rows]) + "\n")


@pytest.fixture
def schema_path(tmp_path: Path) -> Path:
    path = tmp_path / "sales.schema.json"
    path.write_text(json.dumps(SALES_SCHEMA))
    return path


def test_dataset_apply_creates_then_keeps_the_schema_version(schema_path: Path) -> None:
    first = json.loads(run_command("dataset_apply", str(schema_path), json=True))
    again = json.loads(run_command("dataset_apply", str(schema_path), json=True))

    assert first == {
        "dataset": "sales",
        "created": True,
        "schema_version": 1,
        "new_schema_version": True,
        "fields": [f["name"] for f in SALES_SCHEMA["fields"]],
        "key": ["id"],
        "records_checked": 0,
        "records_quarantined": 0,
        "run_id": None,
        "columns_added": [f["name"] for f in SALES_SCHEMA["fields"]],
        "columns_dropped": [],
        "columns_converted": [],
    }
    assert (again["created"], again["schema_version"], again["new_schema_version"]) == (False, 1, False)


def test_dataset_apply_reports_every_schema_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"slug": "x", "key": ["nope"], "fields": [{"name": "a", "type": "money"}]}))

    with pytest.raises(CommandError) as exc:
        run_command("dataset_apply", str(path))

    assert "field 'a': unknown type 'money'" in str(exc.value)
    assert "key field 'nope' is not defined in 'fields'" in str(exc.value)


def test_dataset_apply_refuses_a_missing_file_and_broken_json(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        run_command("dataset_apply", str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        run_command("dataset_apply", str(broken))


def test_ingest_csv_json_output_has_the_counters(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = sales_csv(csv_file, [sales_row(1), sales_row(2), "S3,bad,books,1,1,a@example.com,US,,yes"])
    result = json.loads(run_command("ingest_csv", str(path), dataset="sales", json=True))

    counters = ("rows_read", "rows_valid", "rows_rejected", "rows_inserted", "rows_updated", "rows_unchanged")
    assert {k: result[k] for k in ("status", *counters)} == {
        "status": "partially_succeeded",
        "rows_read": 3,
        "rows_valid": 2,
        "rows_rejected": 1,
        "rows_inserted": 2,
        "rows_updated": 0,
        "rows_unchanged": 0,
    }
    assert result["id"] == Run.objects.get().pk
    assert result["first_errors"] == [{"line": 4, "errors": {"timestamp": ["'bad' is not an ISO 8601 date-time"]}}]


def test_ingest_csv_prints_a_human_summary(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = sales_csv(csv_file, [sales_row(1), "S2,2024-01-02,books,1,x,a@example.com,US,,yes"])
    out = run_command("ingest_csv", str(path), dataset="sales")

    assert "partially_succeeded" in out
    assert "rows read 2 · valid 1 · rejected 1" in out
    assert "line 3: quantity: 'x' is not a whole number" in out
    assert "export_rejected --run" in out


def test_ingest_csv_dry_run_writes_nothing(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = sales_csv(csv_file, [sales_row(1), sales_row(2)])
    result = json.loads(run_command("ingest_csv", str(path), dataset="sales", dry_run=True, json=True))

    assert (result["dry_run"], result["inserted"], result["rejected"]) == (True, 2, 0)
    assert not Run.objects.exists()
    assert not (records_total() > 0)


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (["missing.csv"], {"dataset": "sales"}, "does not exist"),
        ([], {"dataset": "nope"}, re.escape("Unknown dataset 'nope' (known: sales).")),
        ([], {"dataset": "sales", "chunk_size": 0}, "--chunk-size must be at least 1"),
        ([], {"dataset": "sales", "encoding": "klingon"}, "Unknown encoding 'klingon'"),
        ([], {"dataset": "sales", "encoding": "rot13"}, "'rot13' is not a text encoding"),
        ([], {"dataset": "sales", "encoding": "undefined"}, "'undefined' is not a text encoding"),
        ([], {"dataset": "sales", "encoding": "charmap"}, "'charmap' is not a text encoding"),
        ([], {"dataset": "sales", "delimiter": "ab"}, "delimiter must be one character"),
    ],
)
def test_ingest_csv_refuses_bad_input_with_a_clear_message(
    sales: Dataset, csv_file: Callable[..., Path], args: list[str], options: dict[str, Any], message: str
) -> None:
    path = sales_csv(csv_file, [sales_row(1)])
    with pytest.raises(CommandError, match=message):
        run_command("ingest_csv", *(args or [str(path)]), **options)


def test_export_records_neutralises_formula_cells_but_not_numbers(
    sales: Dataset, csv_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = sales_csv(csv_file, [sales_row(1, description="=HYPERLINK(1)"), sales_row(2, description="-5")])
    run_command("ingest_csv", str(path), dataset="sales")
    target = tmp_path / "out.csv"
    run_command("export_records", dataset="sales", format="csv", output=str(target))

    lines = target.read_text().splitlines()
    assert lines[0] == SALES_HEADER
    assert lines[1] == "S1,2024-01-02T03:04:05.000000Z,books,1.50,1,u1@example.com,US,'=HYPERLINK(1),true"
    assert lines[2] == "S2,2024-01-02T03:04:05.000000Z,books,2.50,1,u2@example.com,US,-5,true"


def test_export_records_as_json(sales: Dataset, csv_file: Callable[..., Path], tmp_path: Path) -> None:
    run_command("ingest_csv", str(sales_csv(csv_file, [sales_row(1)])), dataset="sales")
    target = tmp_path / "out.json"
    run_command("export_records", dataset="sales", format="json", output=str(target))

    assert json.loads(target.read_text())[0]["id"] == "S1"


def test_export_rejected_gives_a_file_that_can_be_fixed_and_uploaded_again(
    sales: Dataset, csv_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = sales_csv(csv_file, [sales_row(1), "S2,2024-01-02,books,1,x,u2@example.com,US,,yes"])
    run_id = json.loads(run_command("ingest_csv", str(path), dataset="sales", json=True))["id"]
    target = tmp_path / "rejected.csv"
    run_command("export_rejected", run=run_id, output=str(target))

    text = target.read_text()
    assert text.splitlines()[0] == "_line,_errors," + SALES_HEADER
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(text.replace(",x,", ",3,"))
    again = json.loads(run_command("ingest_csv", str(fixed), dataset="sales", json=True))
    assert (again["status"], again["rows_inserted"]) == ("succeeded", 1)
    assert stored_record(key="S2").data["quantity"] == 3


def test_export_rejected_refuses_an_unknown_run() -> None:
    with pytest.raises(CommandError, match="There is no run 999"):
        run_command("export_rejected", run=999)


def test_infer_schema_proposes_an_applicable_schema(csv_file: Callable[..., Path], tmp_path: Path) -> None:
    rows = [
        f'{i},2024-01-{i % 28 + 1:02d}T10:00:00Z, {[" Books ", "books", "TOYS", "toys"][i % 4]} ,"1,2{i % 10}0.50",{i},'
        f"u{i}@example.com,US,,{'yes' if i % 3 else 'no'}"
        for i in range(1, 41)
    ]
    path = csv_file("\n".join([SALES_HEADER, *rows]) + "\n", name="weekly sales.csv")
    schema = json.loads(run_command("infer_schema", str(path)))

    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert schema["slug"] == "weekly-sales"
    assert schema["key"] == ["id"]
    assert types == {
        "id": "integer",
        "timestamp": "datetime",
        "category": "string",
        "value": "decimal",
        "quantity": "integer",
        "customer_email": "email",
        "country": "string",
        "description": "string",
        "is_active": "boolean",
    }
    category = next(f for f in schema["fields"] if f["name"] == "category")
    assert category == {"name": "category", "type": "string", "required": True, "transforms": ["strip"]}
    assert all("max_length" not in f and "choices" not in f for f in schema["fields"])
    assert "delimiter" not in schema
    description = next(f for f in schema["fields"] if f["name"] == "description")
    assert "required" not in description
    target = tmp_path / "schema.json"
    target.write_text(json.dumps(schema))
    assert json.loads(run_command("dataset_apply", str(target), json=True))["created"] is True


def test_infer_schema_refuses_an_empty_file(csv_file: Callable[..., Path]) -> None:
    with pytest.raises(CommandError, match="empty"):
        run_command("infer_schema", str(csv_file("")))


def orders_csv(csv_file: Callable[..., Path]) -> Path:
    """400 orders: zero-padded ZIP codes, three impossible dates (lines 15, 201, 372), some N/A amounts."""
    rows = []
    for n in range(1, 401):
        shipped = {14: "13/45/2023", 200: "2023-02-30", 371: "N/A?"}.get(n, f"2023-{n % 12 + 1:02d}-{n % 28 + 1:02d}")
        amount = "N/A" if n % 97 == 0 else f"{n * 1.25:.2f}"
        rows.append(f"{n},{n * 7919 % 100000:05d},{shipped},{amount}")
    return csv_file("\n".join(["id,zip,shipped_on,amount", *rows]) + "\n", name="orders.csv")


def test_infer_schema_prints_the_schema_on_stdout_and_why_on_stderr(csv_file: Callable[..., Path]) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("infer_schema", str(orders_csv(csv_file)), stdout=out, stderr=err)

    schema = json.loads(out.getvalue())  # stdout is the schema alone, ready for a pipe
    assert [(f["name"], f["type"]) for f in schema["fields"]] == [
        ("id", "integer"),
        ("zip", "string"),
        ("shipped_on", "date"),
        ("amount", "decimal"),
    ]
    report = err.getvalue()
    assert "Sampled 400 rows" in report
    assert "leading zeros ('07919', line 2): codes, kept as text" in report
    assert "397 of 400 values (99.2%) are dates (YYYY-MM-DD); 3 are not" in report
    assert "rejected when loaded: lines 15, 201, 372" in report
    assert "null values: N/A" in report
    assert "Key: id (candidates: id, zip)" in report


def test_infer_schema_json_prints_one_object_with_the_schema_and_the_report(csv_file: Callable[..., Path]) -> None:
    body = json.loads(run_command("infer_schema", str(orders_csv(csv_file)), json=True))

    assert set(body) == {"schema", "report"}
    assert body["schema"]["key"] == ["id"]
    assert body["report"]["key_candidates"] == ["id", "zip"]
    shipped = body["report"]["columns"][2]
    assert (shipped["name"], shipped["type"], shipped["outlier_count"]) == ("shipped_on", "date", 3)
    assert [o["line"] for o in shipped["outliers"]] == [15, 201, 372]
    assert body["report"]["columns"][3]["null_tokens_seen"] == {"N/A": 4}


def test_infer_schema_names_duplicate_columns(csv_file: Callable[..., Path]) -> None:
    path = csv_file("id,city,name,zip,country,phone,name\n1,a,b,c,d,e,f\n")

    with pytest.raises(CommandError, match="columns 3 and 7 are both named 'name'"):
        run_command("infer_schema", str(path))


def test_a_file_loaded_with_its_inferred_schema_rejects_exactly_the_reported_outliers(
    csv_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = orders_csv(csv_file)
    schema_path = tmp_path / "orders.schema.json"
    call_command("infer_schema", str(path), output=str(schema_path), stdout=io.StringIO(), stderr=io.StringIO())
    run_command("dataset_apply", str(schema_path))

    run_command("ingest_csv", str(path), dataset="orders")

    run = Run.objects.get()
    assert list(run.rejected_rows.values_list("line_number", flat=True)) == [15, 201, 372]
    assert (run.rows_inserted, run.rows_rejected) == (397, 3)
    assert stored_record(key="1").data["zip"] == "07919"
    assert stored_record(key="97").data["amount"] is None


def test_ingest_csv_async_queues_the_run_and_prints_its_id(
    sales: Dataset, csv_file: Callable[..., Path], django_capture_on_commit_callbacks: Any
) -> None:
    path = sales_csv(csv_file, [sales_row(1)])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = json.loads(run_command("ingest_csv", str(path), dataset="sales", run_async=True, json=True))

    run = Run.objects.get()
    assert (result["id"], result["status"], result["finished"]) == (run.pk, "queued", False)
    assert len(callbacks) == 1
    human = run_command("ingest_csv", str(sales_csv(csv_file, [sales_row(2)])), dataset="sales", run_async=True)
    assert human.startswith("Queued run ") and "run_status" in human


def test_run_status_reports_a_run_and_waits_for_it(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    from processing.services.runs import run_execute

    path = sales_csv(csv_file, [sales_row(1), "S2,bad,books,1,1,a@example.com,US,,yes"])
    run_id = json.loads(run_command("ingest_csv", str(path), dataset="sales", run_async=True, json=True))["id"]

    queued = json.loads(run_command("run_status", run_id, json=True))
    assert (queued["status"], queued["progress"], queued["rows_read"]) == ("queued", 0.0, 0)
    with pytest.raises(CommandError, match=f"Run {run_id} is still queued after 0.2s"):
        run_command("run_status", run_id, wait=True, timeout=0.2, interval=0.05)

    run_execute(run_id=run_id)
    done = json.loads(run_command("run_status", run_id, wait=True, json=True))
    assert (done["status"], done["rows_valid"], done["rows_rejected"], done["progress"]) == (
        "partially_succeeded",
        1,
        1,
        1.0,
    )
    assert "rows read 2 · valid 1 · rejected 1" in run_command("run_status", run_id)


def test_run_status_refuses_an_unknown_run() -> None:
    with pytest.raises(CommandError, match="There is no run 12345"):
        run_command("run_status", 12345)


def test_export_records_as_parquet_needs_a_file(sales: Dataset, csv_file: Callable[..., Path], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    run_command("ingest_csv", str(sales_csv(csv_file, [sales_row(1), sales_row(2)])), dataset="sales")
    with pytest.raises(CommandError, match="Parquet is binary"):
        run_command("export_records", dataset="sales", format="parquet")
    target = tmp_path / "sales.parquet"
    run_command("export_records", dataset="sales", format="parquet", output=str(target))

    table = pq.read_table(target)
    assert table.column("id").to_pylist() == ["S1", "S2"]
    assert table.column("quantity").to_pylist() == [1, 1]


def test_ingest_csv_exits_non_zero_when_the_run_fails(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = csv_file(SALES_HEADER + ",ID\n" + sales_row(1) + ",x\n")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("ingest_csv", str(path), dataset="sales", json=True, stdout=out, stderr=io.StringIO())

    assert exc.value.code == 3
    assert json.loads(out.getvalue())["status"] == "failed"


def test_an_export_can_be_ingested_again_as_it_is(
    sales: Dataset, csv_file: Callable[..., Path], tmp_path: Path
) -> None:
    run_command("ingest_csv", str(sales_csv(csv_file, [sales_row(1), sales_row(2, description="-5")])), dataset="sales")
    target = tmp_path / "records.csv"
    run_command("export_records", dataset="sales", output=str(target))
    again = json.loads(run_command("ingest_csv", str(target), dataset="sales", json=True))

    assert (again["status"], again["rows_unchanged"], again["rows_rejected"]) == ("succeeded", 2, 0)


def test_rejected_rows_export_keeps_raw_values_and_extra_values(
    sales: Dataset, csv_file: Callable[..., Path], tmp_path: Path
) -> None:
    rows = [
        "S1,2024-01-02,books,1,-3,a@example.com,US,@team please check,yes",
        "S2,2024-01-02,books,1,1,b@example.com,US,Größe: 42, Farbe: grün,yes",
    ]
    run_id = json.loads(run_command("ingest_csv", str(sales_csv(csv_file, rows)), dataset="sales", json=True))["id"]
    target = tmp_path / "rejected.csv"
    run_command("export_rejected", run=run_id, output=str(target))

    lines = target.read_text().splitlines()
    assert lines[1].endswith(",@team please check,yes")
    assert lines[2].endswith(",Größe: 42, Farbe: grün,yes")
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("\n".join([lines[0], lines[1].replace(",-3,", ",3,")]) + "\n")
    run_command("ingest_csv", str(fixed), dataset="sales")
    assert stored_record(key="S1").data["description"] == "@team please check"


def test_infer_schema_json_shows_undecodable_bytes_as_escapes(csv_file: Callable[..., Path]) -> None:
    # One stray byte makes the file's encoding undecided (as for an upload); read as UTF-8, it is an escape.
    rows = [f"{n},2024-01-{n % 28 + 1:02d}".encode() for n in range(1, 100_000)]
    path = csv_file(b"\n".join([b"id,day", *rows, b"100000,2024-01-0\xff"]) + b"\n")

    body = json.loads(run_command("infer_schema", str(path), json=True, sample_rows=200_000, encoding="utf-8"))

    day = body["report"]["columns"][1]
    assert day["outlier_count"] == 1
    assert day["outliers"][0]["line"] == 100_001
    assert day["outliers"][0]["value"] == "2024-01-0\\udcff"


@pytest.mark.django_db
def test_ingest_csv_on_a_full_data_folder_is_a_one_line_error_keeping_nothing(
    sales: Dataset, tmp_path: Path, small_disk: SmallDisk
) -> None:
    path = tmp_path / "big.csv"  # ~2 MB: more than the 1 MB data folder holds
    path.write_text(SALES_HEADER + "\n" + "".join(sales_row(n, description="x" * 200) + "\n" for n in range(8000)))

    with pytest.raises(CommandError, match="no space left to store this file; nothing was kept"):
        call_command("ingest_csv", str(path), dataset="sales", stdout=io.StringIO(), stderr=io.StringIO())

    assert small_disk.used_bytes() == 0
    assert not Run.objects.exists() and not (records_total() > 0)


@pytest.mark.django_db
def test_ingest_csv_on_a_read_only_data_folder_is_a_one_line_error(
    sales: Dataset, tmp_path: Path, small_disk: SmallDisk
) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(SALES_HEADER + "\n" + sales_row(1) + "\n")
    small_disk.make_read_only()

    with pytest.raises(CommandError, match="storage is read-only"):
        call_command("ingest_csv", str(path), dataset="sales", stdout=io.StringIO(), stderr=io.StringIO())

    assert not Run.objects.exists()
