"""Reading stored records in tests: each dataset's typed table, through the product's own model of it."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ingestion.models import Dataset
from processing.record_tables import RecordBase, records_of, table_exists


def records(dataset: Dataset) -> QuerySet[RecordBase]:
    """The dataset's current records (under its current schema, read fresh)."""
    dataset.refresh_from_db(fields=["current_schema"])
    return records_of(dataset)


def _datasets() -> list[Dataset]:
    return [d for d in Dataset.objects.exclude(current_schema=None).order_by("pk") if table_exists(d.slug)]


def records_total() -> int:
    """Records stored in every dataset together."""
    return sum(records(d).count() for d in _datasets())


def stored_record(**lookup: Any) -> RecordBase:
    """The one record, in any dataset, that matches ``lookup`` (e.g. ``key="S1"``)."""
    found = [r for d in _datasets() for r in records(d).filter(**lookup)]
    assert len(found) == 1, f"expected one record matching {lookup}, found {len(found)}"
    return found[0]


def stored_record_keys() -> list[str]:
    """The keys of every stored record, dataset by dataset, in key order."""
    return [key for d in _datasets() for key in records(d).order_by("key").values_list("key", flat=True)]


def dataset_tables_drop() -> None:
    """Drop every dataset table, as a database flush would if it knew of them.

    Django's flush (between transactional tests) empties the tables it
    knows; the dataset tables point at runs, so they go first.
    """
    from django.db import connection

    from processing.record_tables import is_postgres, table_schema

    with connection.cursor() as cur:
        if is_postgres():
            cur.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(table_schema())} CASCADE")
            return
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        names = [name for (name,) in cur.fetchall() if name.startswith(f"{table_schema()}__")]
        for name in names:
            cur.execute(f"DROP TABLE {connection.ops.quote_name(name)}")
