"""Indexes for record filters on the fields a schema marks ``"indexed": true`` (PostgreSQL).

A filter such as ``?country=FR`` compares ``FieldValue("country", "text")``,
an expression over ``Record.data``. Without an index the database walks the
dataset's records in key order and tests each one: cheap for common values,
a scan of the whole dataset for rare ones. For each indexed field this
creates a partial expression index on exactly that expression, then the key::

    CREATE INDEX record_f<dataset id>_<hash of the name> ON processing_record
        ((CASE WHEN jsonb_typeof(data -> 'country') = 'string' THEN data ->> 'country' END), key)
        WHERE dataset_id = <dataset id>

so an equality filter reads one page of matching records already in key
order, and a range filter reads only the matching records. The expression
is compiled from ``FieldValue`` itself, so it stays what filters compare.
Indexes of fields no longer marked (or whose type changed) are dropped.

SQLite has no such indexes: its filters scan, and give the same answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import connection

from ingestion.models import Dataset
from ingestion.selectors import schema_spec

from .models import Record
from .record_queries import FieldValue, field_kind

INDEX_PREFIX = "record_f"


@dataclass
class RecordIndexChanges:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _index_name(dataset_id: int, field_name: str, kind: str) -> str:
    # Field names may be 63 characters long, like identifiers: hash them (and the
    # kind, so that a change of type gives a new index on the new expression).
    digest = hashlib.blake2b(f"{field_name}:{kind}".encode(), digest_size=6).hexdigest()
    return f"{INDEX_PREFIX}{int(dataset_id)}_{digest}"


def _expression_sql(field_name: str, kind: str) -> str:
    """The SQL of ``FieldValue(field_name, kind)``, with its parameters in line."""
    query = Record.objects.all().query
    compiler = query.get_compiler(connection=connection)
    sql, params = compiler.compile(FieldValue(field_name, kind).resolve_expression(query))
    return connection.ops.compose_sql(sql, params)


def record_indexes_wanted(dataset: Dataset) -> dict[str, str]:
    """Index name → CREATE INDEX statement, for the indexed fields of the dataset's current schema."""
    if not dataset.current_schema_id:
        return {}
    table = Record._meta.db_table
    wanted: dict[str, str] = {}
    for spec in schema_spec(dataset.current_schema).fields:
        if not spec.indexed:
            continue
        kind = field_kind(spec.type)
        name = _index_name(dataset.pk, spec.name, kind)
        wanted[name] = (
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" (({_expression_sql(spec.name, kind)}), "key") '
            f'WHERE "dataset_id" = {int(dataset.pk)}'
        )
    return wanted


def record_indexes_sync(dataset: Dataset) -> RecordIndexChanges:
    """Create the dataset's missing field indexes and drop those no longer wanted (PostgreSQL only).

    Creating an index reads every record of the table and holds off writes
    to it meanwhile, so this runs when a schema is applied through the API
    and before a run loads, not per request.
    """
    changes = RecordIndexChanges()
    if connection.vendor != "postgresql":
        return changes
    wanted = record_indexes_wanted(dataset)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
            "AND indexname LIKE %s",
            [Record._meta.db_table, f"{INDEX_PREFIX}{int(dataset.pk)}\\_%"],
        )
        existing = {name for (name,) in cur.fetchall()}
        for name in sorted(existing - set(wanted)):
            cur.execute(f'DROP INDEX IF EXISTS "{name}"')
            changes.dropped.append(name)
        missing = [(name, statement) for name, statement in wanted.items() if name not in existing]
        # Inside a transaction that wrote records (tests, an outer atomic block),
        # PostgreSQL refuses CREATE INDEX while their deferred foreign-key checks
        # are pending: run those checks now, then defer again as Django does.
        deferred = bool(missing) and connection.in_atomic_block
        if deferred:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name, statement in missing:
            cur.execute(statement)
            changes.created.append(name)
        if deferred:
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
    return changes
