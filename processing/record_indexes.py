"""Indexes for record filters on the fields a schema marks ``"indexed": true``.

A filter such as ``?country=FR`` compares the ``country`` column of the
dataset's table. Without an index the database walks the records in key
order and tests each one: cheap for common values, a scan of the whole
dataset for rare ones. For each indexed field this creates::

    CREATE INDEX recf_<slug>_<hash of the field's name and type> ON datasets."people" ("country", "_key")

so an equality filter reads one page of matching records already in key
order, and a range filter reads only the matching records. Indexes of
fields no longer marked (or whose type changed) are dropped. SQLite gets
the same indexes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import connection

from ingestion.models import Dataset
from ingestion.schema import SchemaSpec
from ingestion.selectors import schema_spec

from .record_tables import is_postgres, table_name, table_schema, table_sql

INDEX_PREFIX = "recf_"


@dataclass
class RecordIndexChanges:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _index_name(slug: str, field_name: str, field_type: str) -> str:
    # Field names may be 63 characters long, like identifiers: hash them (and the
    # type, so that a change of type gives a new index on the new column).
    digest = hashlib.blake2b(f"{slug}:{field_name}:{field_type}".encode(), digest_size=6).hexdigest()
    return f"{INDEX_PREFIX}{slug[:40]}_{digest}"


def record_indexes_wanted(slug: str, spec: SchemaSpec) -> dict[str, str]:
    """Index name → CREATE INDEX statement, for the indexed fields of a schema."""
    quote = connection.ops.quote_name
    return {
        _index_name(slug, f.name, f.type): (
            f"CREATE INDEX IF NOT EXISTS {quote(_index_name(slug, f.name, f.type))} "
            f"ON {table_sql(slug)} ({quote(f.name)}, {quote('_key')})"
        )
        for f in spec.fields
        if f.indexed
    }


def _existing(slug: str) -> set[str]:
    with connection.cursor() as cur:
        if is_postgres():
            cur.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s AND indexname LIKE %s",
                [table_schema(), table_name(slug), f"{INDEX_PREFIX}%"],
            )
        else:
            cur.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND name LIKE %s",
                [table_name(slug), f"{INDEX_PREFIX}%"],
            )
        return {name for (name,) in cur.fetchall()}


def _drop(name: str) -> str:
    quote = connection.ops.quote_name
    qualified = f"{quote(table_schema())}.{quote(name)}" if is_postgres() else quote(name)
    return f"DROP INDEX IF EXISTS {qualified}"


def record_indexes_drop(slug: str) -> list[str]:
    """Drop every field index of a dataset's table (before its columns change)."""
    names = sorted(_existing(slug))
    with connection.cursor() as cur:
        for name in names:
            cur.execute(_drop(name))
    return names


def record_indexes_sync(dataset: Dataset, spec: SchemaSpec | None = None) -> RecordIndexChanges:
    """Create the dataset's missing field indexes and drop those no longer wanted.

    Creating an index reads every record of the table and holds off writes
    to it meanwhile, so this runs when a schema is applied and before a run
    loads, not per request. ``spec``: the schema the table has (default: the current one).
    """
    changes = RecordIndexChanges()
    if spec is None:
        if dataset.current_schema is None:
            return changes
        spec = schema_spec(dataset.current_schema)
    wanted = record_indexes_wanted(dataset.slug, spec)
    existing = _existing(dataset.slug)
    with connection.cursor() as cur:
        for name in sorted(existing - set(wanted)):
            cur.execute(_drop(name))
            changes.dropped.append(name)
        for name, statement in wanted.items():
            if name not in existing:
                cur.execute(statement)
                changes.created.append(name)
    return changes
