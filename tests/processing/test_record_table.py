"""A dataset's typed table: its columns, indexes, references and, on PostgreSQL, its autovacuum settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction

from ingestion.models import Dataset
from processing.models import Run
from processing.record_tables import table_columns, table_name, table_schema, table_sql
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, sales_row

pytestmark = pytest.mark.django_db


def test_records_are_vacuumed_and_analysed_sooner_than_the_default(sales: Dataset) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("autovacuum is PostgreSQL's; SQLite has nothing to tune")
    with connection.cursor() as cur:
        cur.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table_sql(sales.slug)])
        (options,) = cur.fetchone()

    settings = dict(option.split("=") for option in options)
    assert float(settings["autovacuum_vacuum_scale_factor"]) <= 0.05
    assert float(settings["autovacuum_analyze_scale_factor"]) <= 0.02


def test_the_table_has_a_typed_column_per_field_then_the_lineage(sales: Dataset) -> None:
    columns = table_columns(sales.slug)

    pg = connection.vendor == "postgresql"
    assert columns == {
        "id": "text" if pg else "TEXT",
        "timestamp": "timestamptz" if pg else "TEXT",
        "category": "text" if pg else "TEXT",
        "value": "numeric" if pg else "TEXT",
        "quantity": "bigint" if pg else "INTEGER",
        "email": "text" if pg else "TEXT",
        "country": "text" if pg else "TEXT",
        "description": "text" if pg else "TEXT",
        "is_active": "boolean" if pg else "INTEGER",
        "_key": "text" if pg else "TEXT",
        "_first_run_id": "bigint" if pg else "INTEGER",
        "_last_run_id": "bigint" if pg else "INTEGER",
        "_source_line": "integer" if pg else "INTEGER",
        "_schema_version": "integer" if pg else "INTEGER",
        "_created_at": "timestamptz" if pg else "TEXT",
        "_updated_at": "timestamptz" if pg else "TEXT",
    }
    assert table_sql(sales.slug) == ('"datasets"."sales"' if pg else '"datasets__sales"')
    assert table_name(sales.slug) == ("sales" if pg else "datasets__sales") and table_schema() == "datasets"


def test_a_run_that_records_point_at_cannot_be_deleted(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = csv_file("\n".join([SALES_HEADER, sales_row(1)]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name=path.name)
    assert run.rows_inserted == 1

    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.filter(pk=run.pk).delete()
    assert Run.objects.filter(pk=run.pk).exists()
