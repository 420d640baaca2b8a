"""A record's runs: a record cannot point at a run that does not exist, nor can a run it points at be deleted.

On PostgreSQL statement-level triggers check this (processing/record_references.py),
with the locks a foreign key takes; SQLite has ordinary foreign keys.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from ingestion.models import Dataset
from processing.models import Run, RunStatus
from processing.record_tables import table_sql
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, sales_row
from tests.records import records

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="two real connections to PostgreSQL")
MISSING = 987_654_321


def ingest(sales: Dataset, csv_file: Callable[..., Path]) -> Run:
    path = csv_file("\n".join([SALES_HEADER, sales_row(1), sales_row(2), sales_row(3)]) + "\n")
    with path.open("rb") as fh:
        return file_ingest(dataset=sales, source=fh, original_name=path.name)


def insert_late(run_id: int) -> str:
    return (
        f"INSERT INTO {table_sql('sales')} (_key, id, _first_run_id, _last_run_id, _source_line, _schema_version, "
        f"_created_at, _updated_at) VALUES ('late', 'late', {int(run_id)}, {int(run_id)}, 2, 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )


def test_a_record_cannot_point_at_a_run_that_does_not_exist(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    ingest(sales, csv_file)

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute(insert_late(MISSING))
    with pytest.raises(IntegrityError), transaction.atomic():
        records(sales).filter(key="S1").update(last_run_id=MISSING)

    assert "late" not in set(records(sales).values_list("key", flat=True))
    assert records(sales).get(key="S1").last_run_id != MISSING


def test_a_run_records_point_at_cannot_be_deleted_and_one_without_can(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    run = ingest(sales, csv_file)
    spare = Run.objects.create(dataset=sales, schema_id=run.schema_id, status=RunStatus.FAILED)

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("DELETE FROM processing_run WHERE id = %s", [run.pk])
    with connection.cursor() as cur:
        cur.execute("DELETE FROM processing_run WHERE id = %s", [spare.pk])

    assert Run.objects.filter(pk=run.pk).exists() and not Run.objects.filter(pk=spare.pk).exists()
    assert records(sales).count() == 3


def _dsn() -> str:
    settings = connection.settings_dict
    return f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']} dbname={settings['NAME']}"


def _waits_for(holder: psycopg.Connection, other: psycopg.Connection, sql: str) -> BaseException | None:
    """Run ``sql`` on ``other`` in a thread; check it waits for ``holder``'s transaction, then commit that one."""
    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            other.execute(sql)
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
    return outcome["error"]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_delete_cannot_orphan_new_records(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    """The insert locks the run it points at, so a delete waits for it, then sees the record and fails."""
    run = ingest(sales, csv_file)
    spare = Run.objects.create(dataset=sales, schema_id=run.schema_id, status=RunStatus.FAILED)
    with psycopg.connect(_dsn()) as writer, psycopg.connect(_dsn()) as deleter:
        writer.execute(insert_late(spare.pk))
        error = _waits_for(writer, deleter, f"DELETE FROM processing_run WHERE id = {spare.pk}")

    assert isinstance(error, psycopg.errors.ForeignKeyViolation)
    assert Run.objects.filter(pk=spare.pk).exists()
    assert records(sales).get(key="late").first_run_id == spare.pk


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_records_cannot_point_at_a_run_deleted_meanwhile(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    """The other order: the delete holds the run; the insert waits, then finds it gone and fails."""
    run = ingest(sales, csv_file)
    spare = Run.objects.create(dataset=sales, schema_id=run.schema_id, status=RunStatus.FAILED)
    with psycopg.connect(_dsn()) as writer, psycopg.connect(_dsn()) as deleter:
        deleter.execute(f"DELETE FROM processing_run WHERE id = {spare.pk}")
        error = _waits_for(deleter, writer, insert_late(spare.pk))

    assert isinstance(error, psycopg.errors.ForeignKeyViolation)
    assert "late" not in set(records(sales).values_list("key", flat=True))
    assert not Run.objects.filter(pk=spare.pk).exists()
