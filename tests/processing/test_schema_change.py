"""Schema changes keep every stored record true: preview, quarantine, conversion, new and removed columns."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from ingestion.models import Dataset
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from processing.models import RejectedRow, Run, RunStatus, RunTrigger
from processing.record_tables import table_columns
from processing.services.rejects import rejected_rows_reload
from processing.services.runs import file_ingest
from tests.records import records

pytestmark = pytest.mark.django_db

EVENTS: dict[str, Any] = {
    "slug": "events",
    "name": "Events",
    "key": ["id"],
    "delimiter": ",",
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "day", "type": "string"},
        {"name": "amount", "type": "string"},
        {"name": "note", "type": "string"},
    ],
}
ROWS = [
    "e1,2024-01-31,12,first",
    "e2,13/45/2023,7.5,second",
    "e3,2024-02-29,abc,",
    "e4,,40,fourth",
]


def schema(**changes: dict[str, Any]) -> dict[str, Any]:
    """EVENTS with fields changed (name → new definition; None removes it)."""
    out = copy.deepcopy(EVENTS)
    fields = {f["name"]: f for f in out["fields"]}
    for name, definition in changes.items():
        if definition is None:
            fields.pop(name)
        else:
            fields[name] = {"name": name, **definition}
    out["fields"] = list(fields.values())
    return out


def apply(document: dict[str, Any]) -> Any:
    return dataset_apply(spec=schema_parse(json.loads(json.dumps(document))))


@pytest.fixture
def events(csv_file: Callable[..., Path]) -> Dataset:
    dataset = apply(EVENTS).dataset
    path = csv_file("\n".join(["id,day,amount,note", *ROWS]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=dataset, source=fh, original_name="events.csv")
    assert run.rows_inserted == 4
    return dataset


def stored(dataset: Dataset) -> dict[str, dict[str, Any]]:
    return {r.key: r.data for r in records(dataset)}


def command_json(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("dataset_apply", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_a_dry_run_reports_the_failing_records_and_changes_nothing(events: Dataset, tmp_path: Path) -> None:
    before = stored(events)
    target = tmp_path / "events.json"
    target.write_text(json.dumps(schema(day={"type": "date"})))

    report = command_json(str(target), "--dry-run")

    assert report["dry_run"] is True
    assert (report["records_checked"], report["records_failing"]) == (4, 1)
    assert report["failures"] == [
        {"key": "e2", "source_line": 3, "errors": {"day": ["'13/45/2023' is not a date (expected YYYY-MM-DD)"]}}
    ]
    assert report["columns_converted"] == (["day"] if connection.vendor == "postgresql" else [])  # SQLite: text both
    assert stored(events) == before
    assert Dataset.objects.get(pk=events.pk).current_schema.number == 1
    assert not Run.objects.filter(trigger=RunTrigger.SCHEMA_CHANGE).exists()


def test_applying_quarantines_what_fails_and_converts_the_rest(events: Dataset, tmp_path: Path) -> None:
    target = tmp_path / "events.json"
    target.write_text(json.dumps(schema(day={"type": "date"})))

    result = command_json(str(target))

    assert (result["records_checked"], result["records_quarantined"]) == (4, 1)
    run = Run.objects.get(pk=result["run_id"])
    assert run.trigger == RunTrigger.SCHEMA_CHANGE and run.status == RunStatus.PARTIALLY_SUCCEEDED
    assert (run.rows_read, run.rows_valid, run.rows_rejected) == (4, 3, 1)
    row = RejectedRow.objects.get(run=run)
    assert row.line_number == 3
    assert row.raw == {"id": "e2", "day": "13/45/2023", "amount": "7.5", "note": "second"}
    assert row.errors["day"] == ["'13/45/2023' is not a date (expected YYYY-MM-DD)"]
    assert "quarantined by the change to schema version 2" in row.errors["__row__"][0]
    # Every stored record passes the new version; the column is a real date now.
    assert stored(events) == {
        "e1": {"id": "e1", "day": "2024-01-31", "amount": "12", "note": "first"},
        "e3": {"id": "e3", "day": "2024-02-29", "amount": "abc", "note": None},
        "e4": {"id": "e4", "day": None, "amount": "40", "note": "fourth"},
    }
    assert table_columns("events")["day"] == ("date" if connection.vendor == "postgresql" else "TEXT")
    assert records(events).get(key="e1").schema_number == 1  # validated again, loaded under v1


def test_a_quarantined_record_is_fixed_and_loaded_again(events: Dataset) -> None:
    result = apply(schema(day={"type": "date"}))
    row = RejectedRow.objects.get(run_id=result.records.run_id)
    row.raw = {**row.raw, "day": "2023-12-13"}
    row.save()

    fixed, loaded = rejected_rows_reload(run=Run.objects.get(pk=result.records.run_id), row_ids=[row.pk])

    assert loaded == 1 and fixed.status == RunStatus.SUCCEEDED
    assert stored(events)["e2"] == {"id": "e2", "day": "2023-12-13", "amount": "7.5", "note": "second"}
    assert not RejectedRow.objects.filter(pk=row.pk).exists()


def test_a_type_change_converts_the_stored_values(events: Dataset) -> None:
    result = apply(schema(amount={"type": "decimal"}))

    assert result.records.records_quarantined == 1  # "abc"
    assert {k: v["amount"] for k, v in stored(events).items()} == {"e1": "12", "e2": "7.5", "e4": "40"}
    assert table_columns("events")["amount"] == ("numeric" if connection.vendor == "postgresql" else "TEXT")
    # Filters compare the converted values as numbers.
    from ingestion.selectors import schema_spec
    from processing.record_queries import records_list

    events.refresh_from_db()
    spec = schema_spec(events.current_schema)
    assert list(records_list(events, spec, filters=[("amount__gte", "10")]).values_list("key", flat=True)) == [
        "e1",
        "e4",
    ]


def test_a_tightened_rule_quarantines_without_a_type_change(events: Dataset) -> None:
    result = apply(schema(note={"type": "string", "required": True}))

    assert (result.records.records_checked, result.records.records_quarantined) == (4, 1)
    assert set(stored(events)) == {"e1", "e2", "e4"}
    row = RejectedRow.objects.get(run_id=result.records.run_id)
    assert row.errors["note"] == ["this field is required"]


def test_new_optional_fields_are_added_and_removed_ones_dropped(events: Dataset) -> None:
    result = apply(schema(note=None, country={"type": "string"}))

    assert result.records.records_checked == 0 and result.records.run_id is None
    assert result.records.columns_added == ["country"] and result.records.columns_dropped == ["note"]
    assert "note" not in table_columns("events") and "country" in table_columns("events")
    assert stored(events)["e1"] == {"id": "e1", "day": "2024-01-31", "amount": "12", "country": None}


def test_a_change_that_leaves_the_records_alone_checks_nothing(events: Dataset) -> None:
    result = apply(schema(note={"type": "string", "description": "free text"}))

    assert result.new_version and result.records.records_checked == 0
    assert not Run.objects.filter(trigger=RunTrigger.SCHEMA_CHANGE).exists()


def test_a_run_queued_before_the_change_loads_under_the_new_version(
    events: Dataset, csv_file: Callable[..., Path]
) -> None:
    from ingestion.services.raw_files import raw_file_receive
    from processing.services.runs import run_create, run_execute

    path = csv_file("id,day,amount,note\ne5,2024-03-01,1,x\ne6,31/03/2024,2,y\n")
    with path.open("rb") as fh:
        raw = raw_file_receive(dataset=events, source=fh, original_name="late.csv")
    queued = run_create(dataset=events, raw_file=raw)
    apply(schema(day={"type": "date"}))

    run = run_execute(run_id=queued.pk)

    assert run is not None and run.schema.number == 2
    assert run.summary["schema_changed_before_start"] == {"queued_under": 1, "loaded_under": 2}
    assert (run.rows_inserted, run.rows_rejected) == (1, 1)
    assert stored(events)["e5"]["day"] == "2024-03-01"


def test_the_admin_shows_the_preview_before_applying(events: Dataset, tmp_path: Path) -> None:
    from django.urls import reverse

    from tests.processing.test_admin import client_for

    admin_client = client_for(superuser=True)
    target = tmp_path / "events.json"
    target.write_text(json.dumps(schema(day={"type": "date"})))
    with target.open("rb") as fh:
        page = admin_client.post(reverse("admin:ingestion_dataset_import"), {"schema_file": fh}).content.decode()

    assert "4 stored record(s) checked" in page and "<strong>1</strong> no longer pass" in page
    assert "13/45/2023" in page and Dataset.objects.get(pk=events.pk).current_schema.number == 1

    text = schema(day={"type": "date"})
    response = admin_client.post(
        reverse("admin:ingestion_dataset_import"), {"schema_text": json.dumps(text), "confirm": "1"}, follow=True
    )

    assert "1 stored record(s) no longer pass and were quarantined" in response.content.decode()
    assert Dataset.objects.get(pk=events.pk).current_schema.number == 2
    assert set(stored(events)) == {"e1", "e3", "e4"}


def test_the_console_never_deletes_a_run_or_a_dataset_with_files_and_an_empty_one_leaves_no_table(
    events: Dataset,
) -> None:
    from django.urls import reverse

    from processing.record_tables import table_exists
    from tests.processing.test_admin import client_for

    admin_client = client_for(superuser=True)
    run = Run.objects.filter(dataset=events).first()
    assert admin_client.post(reverse("admin:processing_run_delete", args=[run.pk]), {"post": "yes"}).status_code == 403
    assert (
        admin_client.post(reverse("admin:ingestion_dataset_delete", args=[events.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert Run.objects.filter(pk=run.pk).exists() and records(events).count() == 4

    empty = apply({**EVENTS, "slug": "empty"}).dataset
    assert table_exists("empty")
    from ingestion.services.datasets import dataset_delete

    dataset_delete(dataset=empty)  # the API's door (and the console's, for a dataset without files)

    assert not Dataset.objects.filter(slug="empty").exists() and not table_exists("empty")


def test_a_run_loading_when_the_schema_changes_stops_at_its_next_chunk(
    events: Dataset, csv_file: Callable[..., Path]
) -> None:
    from ingestion.services.raw_files import raw_file_receive
    from processing.services.runs import run_create, run_execute

    rows = [f"n{i},2024-03-{i:02d},{i},x" for i in range(1, 10)]
    path = csv_file("\n".join(["id,day,amount,note", *rows]) + "\n")
    with path.open("rb") as fh:
        raw = raw_file_receive(dataset=events, source=fh, original_name="more.csv")
    queued = run_create(dataset=events, raw_file=raw, chunk_size=3)
    changed: list[bool] = []

    def change_once(run: Run) -> None:
        if not changed:
            changed.append(True)
            apply(schema(amount={"type": "integer"}))

    run = run_execute(run_id=queued.pk, on_chunk=change_once)

    assert run is not None and run.status == RunStatus.FAILED
    assert "schema changed from version 1 to 2 while this run was loading" in run.error
    assert run.rows_inserted == 3  # the first chunk, checked and converted by the change
    assert {k: v["amount"] for k, v in stored(events).items() if k.startswith("n")} == {"n1": 1, "n2": 2, "n3": 3}


def test_a_key_field_changing_type_rekeys_the_records_and_quarantines_collisions(
    csv_file: Callable[..., Path],
) -> None:
    document = {
        "slug": "codes",
        "key": ["code"],
        "fields": [{"name": "code", "type": "string", "required": True}, {"name": "label", "type": "string"}],
    }
    dataset = apply(document).dataset
    path = csv_file("code,label\n007,bond\n7,seven\n010,ten\nx1,letters\n")
    with path.open("rb") as fh:
        file_ingest(dataset=dataset, source=fh, original_name="codes.csv")

    result = apply(
        {**document, "fields": [{"name": "code", "type": "integer", "required": True}, document["fields"][1]]}
    )

    # "7" keeps its key; "007" would become 7 too; "x1" is no integer; "010" becomes 10.
    assert result.records.records_quarantined == 2
    assert {k: v for k, v in stored(dataset).items()} == {
        "10": {"code": 10, "label": "ten"},
        "7": {"code": 7, "label": "seven"},
    }
    rows = {r.raw["code"]: r.errors for r in RejectedRow.objects.filter(run_id=result.records.run_id)}
    assert rows["007"]["__row__"][0] == "its key becomes '7' under the new schema, the key of record '7'"
    assert "x1" in rows
    # A file loaded now finds the records under their new keys.
    path = csv_file("code,label\n10,ten again\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=dataset, source=fh, original_name="again.csv")
    assert (run.rows_inserted, run.rows_updated) == (0, 1)


def test_the_check_walks_the_table_in_batches_with_exact_counts(
    csv_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import processing.record_schema

    monkeypatch.setattr(processing.record_schema, "_BATCH", 7)
    dataset = apply(EVENTS).dataset
    rows = [f"k{i:03d},{'2024-01-02' if i % 5 else 'soon'},{i},x" for i in range(1, 51)]
    path = csv_file("\n".join(["id,day,amount,note", *rows]) + "\n")
    with path.open("rb") as fh:
        file_ingest(dataset=dataset, source=fh, original_name="many.csv")

    result = apply(schema(day={"type": "date"}, amount={"type": "integer"}))

    assert (result.records.records_checked, result.records.records_quarantined) == (50, 10)
    assert RejectedRow.objects.filter(run_id=result.records.run_id).count() == 10
    kept = stored(dataset)
    assert len(kept) == 40 and all(v["day"] == "2024-01-02" and isinstance(v["amount"], int) for v in kept.values())
    assert kept["k001"]["amount"] == 1 and kept["k049"]["amount"] == 49
