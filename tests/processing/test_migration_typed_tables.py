"""Migration 0053 on a database filled as the previous release filled it: records move into typed tables.

The database is taken back to 0052 (the JSON ``processing_record`` table),
filled through the models of that state, then migrated forward.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ingestion.schema import schema_parse
from processing.record_tables import table_exists, table_sql

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("processing", "0052_run_enqueued_at")]
AFTER = [("processing", "0053_typed_record_tables")]

V1 = {
    "slug": "legacy",
    "name": "Legacy",
    "key": ["id"],
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "day", "type": "string"},
        {"name": "amount", "type": "decimal"},
        {"name": "flag", "type": "boolean"},
        {"name": "gone", "type": "string"},
    ],
}
V2 = {**V1, "fields": [*V1["fields"][:1], {"name": "day", "type": "date"}, *V1["fields"][2:4]]}


def migrate(target: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor


@pytest.fixture
def back_at_0052():
    executor = migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    migrate(leaves)


def fill(apps) -> dict[str, int]:
    """A dataset as the previous release left it: v1 then v2, records of both, in the JSON table."""
    Dataset = apps.get_model("ingestion", "Dataset")
    SchemaVersion = apps.get_model("ingestion", "SchemaVersion")
    Run = apps.get_model("processing", "Run")
    Record = apps.get_model("processing", "Record")
    dataset = Dataset.objects.create(slug="legacy", name="Legacy", key_fields=["id"])
    versions = {}
    for number, definition in ((1, V1), (2, V2)):
        spec = schema_parse(definition)
        versions[number] = SchemaVersion.objects.create(
            dataset=dataset, number=number, definition=spec.to_dict(), checksum=spec.fields_checksum()
        )
    dataset.current_schema = versions[2]
    dataset.save()
    first = Run.objects.create(dataset=dataset, schema=versions[1], status="succeeded")
    second = Run.objects.create(dataset=dataset, schema=versions[2], status="succeeded")
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    rows = [
        ("L1", {"id": "L1", "day": "2024-01-31", "amount": "12.50", "flag": True}, first, second, 2, 2),
        ("L2", {"id": "L2", "day": "13/45/2023", "amount": "1", "flag": False, "gone": "x"}, first, first, 3, 1),
        ("L3", {"id": "L3", "day": None, "amount": "-7", "flag": None, "gone": "kept?"}, first, first, 4, 1),
    ]
    for key, data, first_run, last_run, line, number in rows:
        Record.objects.create(
            dataset=dataset,
            key=key,
            data=data,
            content_hash=hashlib.blake2b(json.dumps(data).encode(), digest_size=16).hexdigest(),
            first_run=first_run,
            last_run=last_run,
            source_line=line,
            schema=versions[number],
            created_at=moment,
            updated_at=moment,
        )
    return {"first": first.pk, "second": second.pk, "v2": versions[2].pk}


def test_records_move_into_typed_tables_and_misfits_are_quarantined(back_at_0052) -> None:
    ids = fill(back_at_0052)

    migrate(AFTER)

    assert table_exists("legacy")
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT _key, id, day, amount, flag, _first_run_id, _last_run_id, _source_line, _schema_version "
            f"FROM {table_sql('legacy')} ORDER BY _key"
        )
        rows = cur.fetchall()
    pg = connection.vendor == "postgresql"
    from datetime import date
    from decimal import Decimal

    assert rows == [
        (
            "L1",
            "L1",
            date(2024, 1, 31) if pg else "2024-01-31",
            Decimal("12.50") if pg else "12.50",
            True if pg else 1,
            ids["first"],
            ids["second"],
            2,
            2,
        ),
        ("L3", "L3", None, Decimal("-7") if pg else "-7", None, ids["first"], ids["first"], 4, 1),
    ]
    from processing.models import RejectedRow, Run

    run = Run.objects.get(trigger="schema_change")
    assert (run.rows_read, run.rows_valid, run.rows_rejected) == (3, 2, 1)
    # The columns this migration knows (later ones add more to the model).
    row = RejectedRow.objects.filter(run=run).values("line_number", "schema_id", "raw", "errors").get()
    assert (row["line_number"], row["schema_id"]) == (3, ids["v2"])
    assert row["raw"] == {"id": "L2", "day": "13/45/2023", "amount": "1", "flag": "false"}
    assert row["errors"]["day"] == ["'13/45/2023' is not a date (expected YYYY-MM-DD)"]
    assert f"last written by run {ids['first']}" in row["errors"]["__row__"][0]
    with connection.cursor() as cur:
        assert "processing_record" not in connection.introspection.table_names(cur)


def test_the_api_serves_the_moved_records_as_before(back_at_0052) -> None:
    fill(back_at_0052)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from ingestion.models import Dataset
    from tests.records import records

    stored = {r.key: (r.data, r.created_at) for r in records(Dataset.objects.get(slug="legacy"))}
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert stored == {
        "L1": ({"id": "L1", "day": "2024-01-31", "amount": "12.50", "flag": True}, moment),
        "L3": ({"id": "L3", "day": None, "amount": "-7", "flag": None}, moment),
    }


def test_going_back_moves_the_records_into_the_json_table(back_at_0052) -> None:
    fill(back_at_0052)
    migrate(AFTER)

    executor = migrate(BEFORE)

    Record = executor.loader.project_state(BEFORE).apps.get_model("processing", "Record")
    assert {r.key: r.data for r in Record.objects.all()} == {
        "L1": {"id": "L1", "day": "2024-01-31", "amount": "12.50", "flag": True},
        "L3": {"id": "L3", "day": None, "amount": "-7", "flag": None},
    }
    assert not table_exists("legacy")
