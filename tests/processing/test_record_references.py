"""A record's four references (dataset, first and last run, schema version) hold on PostgreSQL.

They are checked once per statement by triggers (migration 0051) instead of
by foreign keys; these tests hold the triggers to what the foreign keys did:
refuse a reference to nothing, refuse deleting what records point at, and
keep a concurrent delete from slipping between the check and the commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from ingestion.models import Dataset, SchemaVersion
from processing.models import Record, Run, RunStatus
from processing.services import file_ingest
from tests.conftest import SALES_HEADER, sales_row

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the reference triggers are PostgreSQL's"),
]

MISSING = 987_654_321


def ingest(sales: Dataset, csv_file: Callable[..., Path], n: int = 3) -> Run:
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, n + 1))]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name=path.name)
    assert run.status == RunStatus.SUCCEEDED
    return run


def new_record(run: Run, **refs: int) -> Record:
    now = timezone.now()
    fields = {
        "dataset_id": run.dataset_id,
        "first_run_id": run.pk,
        "last_run_id": run.pk,
        "schema_id": run.schema_id,
        **refs,
    }
    return Record(key="new", data={}, content_hash="0" * 32, source_line=2, created_at=now, updated_at=now, **fields)


def test_the_triggers_are_installed() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        names = {name for (name,) in cur.fetchall()}
        cur.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'processing_record'::regclass AND contype = 'f'"
        )
        (foreign_keys,) = cur.fetchone()
    assert {
        "processing_record_refs_insert",
        "processing_record_refs_update",
        "processing_run_records_guard",
        "ingestion_dataset_records_guard",
        "ingestion_schemaversion_records_guard",
    } <= names
    assert foreign_keys == 0


@pytest.mark.parametrize("field", ["dataset_id", "first_run_id", "last_run_id", "schema_id"])
def test_a_record_pointing_at_nothing_is_refused(sales: Dataset, csv_file: Callable[..., Path], field: str) -> None:
    run = ingest(sales, csv_file)

    with pytest.raises(IntegrityError, match="does not exist"), transaction.atomic():
        new_record(run, **{field: MISSING}).save()

    assert not Record.objects.filter(key="new").exists()
    assert Record.objects.count() == 3


def test_an_update_pointing_at_nothing_is_refused(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    ingest(sales, csv_file)

    with pytest.raises(IntegrityError, match=f"run {MISSING}"), transaction.atomic():
        Record.objects.filter(key="S1").update(last_run_id=MISSING)

    assert Record.objects.get(key="S1").last_run_id != MISSING


def test_a_statement_of_many_rows_is_refused_for_one_bad_row(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file)
    rows = [new_record(run) for _ in range(5)]
    for i, r in enumerate(rows):
        r.key = f"bulk-{i}"
    rows[3].schema_id = MISSING

    with pytest.raises(IntegrityError, match=f"schema version {MISSING}"), transaction.atomic():
        Record.objects.bulk_create(rows)

    assert not Record.objects.filter(key__startswith="bulk-").exists()


def test_valid_references_load_as_before(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    first = ingest(sales, csv_file, 3)
    second = ingest(sales, csv_file, 5)  # 3 unchanged, 2 new

    assert second.rows_inserted == 2 and second.rows_unchanged == 3
    assert set(Record.objects.values_list("first_run_id", flat=True)) == {first.pk, second.pk}


@pytest.mark.parametrize("table", ["processing_run", "ingestion_dataset", "ingestion_schemaversion"])
def test_deleting_what_records_point_at_is_refused(sales: Dataset, csv_file: Callable[..., Path], table: str) -> None:
    run = ingest(sales, csv_file)
    target = {"processing_run": run.pk, "ingestion_dataset": sales.pk, "ingestion_schemaversion": run.schema_id}[table]

    # Other tables' foreign keys to these are deferred to the commit; the trigger fails the statement.
    with (
        pytest.raises(IntegrityError, match="still referred to by records"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute(f"DELETE FROM {table} WHERE id = %s", [target])

    assert Record.objects.count() == 3


def test_the_orm_still_protects_runs_and_schema_versions(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file)

    with pytest.raises(ProtectedError):
        Run.objects.filter(pk=run.pk).delete()
    with pytest.raises(ProtectedError):
        SchemaVersion.objects.filter(pk=run.schema_id).delete()


def test_a_run_without_records_can_still_be_deleted(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file)
    spare = Run.objects.create(dataset=sales, schema_id=run.schema_id, status=RunStatus.FAILED)

    with connection.cursor() as cur:
        cur.execute("DELETE FROM processing_run WHERE id = %s", [spare.pk])

    assert not Run.objects.filter(pk=spare.pk).exists()


INSERT_LATE = (
    "INSERT INTO processing_record (dataset_id, key, data, content_hash, first_run_id, last_run_id,"
    " source_line, schema_id, created_at, updated_at) VALUES (%s, 'late', '{}', %s, %s, %s, 2, %s, now(), now())"
)


def _dsn() -> str:
    settings = connection.settings_dict
    return f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']} dbname={settings['NAME']}"


Outcome = dict[str, BaseException | None]


def _waits_for(holder: psycopg.Connection, other: psycopg.Connection, sql: str, params: list[object]) -> Outcome:
    """Run ``sql`` on ``other`` in a thread; check it waits for ``holder``'s transaction, then commit that one.

    Returns ``{"error": the psycopg error other's statement ended with, or None}``.
    """
    outcome: Outcome = {}

    def run() -> None:
        try:
            other.execute(sql, params)
            other.commit()
            outcome["error"] = None
        except psycopg.Error as exc:
            other.rollback()
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the second transaction should wait for the first"
    holder.commit()
    thread.join(10)
    return outcome


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_delete_cannot_orphan_new_records(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    """The insert locks the run it points at, so a delete waits for it, then sees the records and fails."""
    run = ingest(sales, csv_file)
    spare = Run.objects.create(dataset=sales, schema_id=run.schema_id, status=RunStatus.FAILED)
    with psycopg.connect(_dsn()) as writer, psycopg.connect(_dsn()) as deleter:
        writer.execute(INSERT_LATE, [sales.pk, "0" * 32, spare.pk, spare.pk, run.schema_id])
        outcome = _waits_for(writer, deleter, "DELETE FROM processing_run WHERE id = %s", [spare.pk])

    assert isinstance(outcome["error"], psycopg.errors.ForeignKeyViolation)
    assert Run.objects.filter(pk=spare.pk).exists()
    assert Record.objects.get(key="late").first_run_id == spare.pk


@pytest.mark.django_db(transaction=True)
def test_records_cannot_point_at_a_run_deleted_meanwhile(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    """The other order: the delete holds the run; the insert waits, then finds it gone and fails."""
    run = ingest(sales, csv_file)
    spare = Run.objects.create(dataset=sales, schema_id=run.schema_id, status=RunStatus.FAILED)
    with psycopg.connect(_dsn()) as writer, psycopg.connect(_dsn()) as deleter:
        deleter.execute("DELETE FROM processing_run WHERE id = %s", [spare.pk])
        outcome = _waits_for(deleter, writer, INSERT_LATE, [sales.pk, "0" * 32, spare.pk, spare.pk, run.schema_id])

    assert isinstance(outcome["error"], psycopg.errors.ForeignKeyViolation)
    assert not Record.objects.filter(key="late").exists()
    assert not Run.objects.filter(pk=spare.pk).exists()
