"""One typed table per dataset: its name, its columns, its life, and a model to query it.

A dataset's current records are the rows of its own table (docs/sql.md):

* PostgreSQL: ``<DATASETS_DB_SCHEMA>."<slug>"``, e.g. ``datasets."people"``;
* SQLite: ``"<DATASETS_DB_SCHEMA>__<slug>"``, e.g. ``"datasets__people"`` (one file, no schemas).

One column per schema field, named as the field and typed by the field type
(``FieldTypeSpec.sql_type`` / ``sqlite_type``), then the lineage columns,
which all start with ``_``. The table follows the dataset: it is created and
changed with the schema (``record_table_sync``) and dropped with the dataset.

Values keep the canonical forms of docs/schema.md on the way out: a
``numeric`` keeps its scale ("1234.50"), a ``timestamptz`` comes back as UTC
text with a 6-digit fraction, so the API serves what it served from JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar, cast

from django.apps.registry import Apps
from django.conf import settings
from django.db import connection, models

from ingestion.fieldtypes import field_type
from ingestion.fieldtypes.datetime import utc_text
from ingestion.models import Dataset
from ingestion.schema import FieldSpec, SchemaSpec
from ingestion.selectors import schema_spec

from .record_references import table_references_sql

# The lineage columns, in table order: (column, PostgreSQL type, SQLite type).
LINEAGE = (
    ("_key", "text", "TEXT"),
    ("_first_run_id", "bigint", "INTEGER"),
    ("_last_run_id", "bigint", "INTEGER"),
    ("_source_line", "integer", "INTEGER"),
    ("_schema_version", "integer", "INTEGER"),
    ("_created_at", "timestamptz", "TEXT"),
    ("_updated_at", "timestamptz", "TEXT"),
)
LINEAGE_COLUMNS = tuple(name for name, _, _ in LINEAGE)
# PostgreSQL truncates longer names (NAMEDATALEN - 1).
MAX_IDENTIFIER = 63


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def table_schema() -> str:
    return settings.DATAFLOW["TABLE_SCHEMA"]


def table_name(slug: str) -> str:
    """The table's own name: the slug on PostgreSQL (hashed past 63 characters), prefixed on SQLite."""
    if not is_postgres():
        return f"{table_schema()}__{slug}"
    if len(slug) <= MAX_IDENTIFIER:
        return slug
    digest = hashlib.blake2b(slug.encode(), digest_size=4).hexdigest()
    return f"{slug[: MAX_IDENTIFIER - 9]}_{digest}"


def table_sql(slug: str) -> str:
    """The quoted, qualified name to put in SQL."""
    quote = connection.ops.quote_name
    if is_postgres():
        return f"{quote(table_schema())}.{quote(table_name(slug))}"
    return quote(table_name(slug))


def column_type(field: FieldSpec) -> str:
    kind = field_type(field.type)
    return kind.sql_type if is_postgres() else kind.sqlite_type


def table_exists(slug: str) -> bool:
    with connection.cursor() as cur:
        if is_postgres():
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s)",
                [table_schema(), table_name(slug)],
            )
        else:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s)", [table_name(slug)]
            )
        return bool(cur.fetchone()[0])


def table_columns(slug: str) -> dict[str, str]:
    """Column name → declared type of the dataset's table, in table order (empty when it has none)."""
    with connection.cursor() as cur:
        if is_postgres():
            cur.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                [table_schema(), table_name(slug)],
            )
            return {name: _pg_type_alias(kind) for name, kind in cur.fetchall()}
        cur.execute(f"PRAGMA table_info({connection.ops.quote_name(table_name(slug))})")
        return {row[1]: row[2] for row in cur.fetchall()}


_PG_ALIASES = {"timestamp with time zone": "timestamptz", "character varying": "text"}


def _pg_type_alias(name: str) -> str:
    return _PG_ALIASES.get(name, name)


def create_sql(slug: str, spec: SchemaSpec, dataset_id: int) -> list[str]:
    """The statements creating a dataset's table (and, on PostgreSQL, its schema)."""
    quote = connection.ops.quote_name
    pg = is_postgres()
    # PostgreSQL checks the runs once per statement (record_references.py), SQLite with foreign keys.
    runs = "" if pg else f" REFERENCES {quote('processing_run')} (id)"
    columns = [f"{quote(f.name)} {column_type(f)}" for f in spec.fields]
    lineage = [
        f"{quote('_key')} text PRIMARY KEY",
        f"{quote('_first_run_id')} {'bigint' if pg else 'INTEGER'} NOT NULL{runs}",
        f"{quote('_last_run_id')} {'bigint' if pg else 'INTEGER'} NOT NULL{runs}",
        f"{quote('_source_line')} {'integer' if pg else 'INTEGER'} NOT NULL",
        f"{quote('_schema_version')} {'integer' if pg else 'INTEGER'} NOT NULL",
        f"{quote('_created_at')} {'timestamptz' if pg else 'TEXT'} NOT NULL",
        f"{quote('_updated_at')} {'timestamptz' if pg else 'TEXT'} NOT NULL",
    ]
    statements = []
    if pg:
        statements.append(f"CREATE SCHEMA IF NOT EXISTS {quote(table_schema())}")
    # Records are upserted in bulk and a re-load rewrites a large share of the
    # table: PostgreSQL's defaults (vacuum past 20 % dead rows, analyse past
    # 10 % changed) let dead rows and stale statistics pile up between runs.
    storage = f" WITH ({', '.join(f'{k} = {v}' for k, v in AUTOVACUUM.items())})" if pg else ""
    statements.append(f"CREATE TABLE {table_sql(slug)} ({', '.join([*columns, *lineage])}){storage}")
    # A run's records (?run=, lineage). No index on _first_run_id: only deleting
    # a run looks it up, and every load would pay for it.
    statements.append(
        f"CREATE INDEX {quote(_index_name(slug, 'last_run'))} ON {table_sql(slug)} ({quote('_last_run_id')})"
    )
    if pg:
        statements.extend(table_references_sql(table_sql(slug), dataset_id))
    return statements


AUTOVACUUM = {
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_vacuum_threshold": "1000",
    "autovacuum_analyze_scale_factor": "0.01",
    "autovacuum_analyze_threshold": "1000",
    "autovacuum_vacuum_insert_scale_factor": "0.05",
}


def _index_name(slug: str, what: str) -> str:
    """An index name unique in the schema (PostgreSQL) or the database (SQLite), at most 63 characters."""
    digest = hashlib.blake2b(f"{slug}:{what}".encode(), digest_size=6).hexdigest()
    return f"rec_{slug[:40]}_{digest}"


def record_table_create(slug: str, spec: SchemaSpec, dataset_id: int) -> None:
    with connection.cursor() as cur:
        for statement in create_sql(slug, spec, dataset_id):
            cur.execute(statement)


def record_table_drop(slug: str) -> None:
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table_sql(slug)}")


def record_table_fits(slug: str, spec: SchemaSpec) -> bool:
    """Whether the table has exactly the schema's field columns with their types (and the lineage)."""
    wanted = {f.name: column_type(f) for f in spec.fields}
    found = table_columns(slug)
    data = {name: kind for name, kind in found.items() if name not in LINEAGE_COLUMNS}
    return bool(found) and data == wanted and list(data) == list(wanted)


# --- Values -------------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A stored column value in the canonical JSON form of docs/schema.md."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"unexpected stored value {value!r}")


def column_values(spec: SchemaSpec, data: dict[str, Any]) -> list[Any]:
    """A validated row's values (canonical JSON forms) in column order, as the database takes them."""
    return [data.get(f.name) for f in spec.fields]


# --- A model to query the table ---------------------------------------------------------


class DecimalText(models.Field):
    """A ``numeric`` column (PostgreSQL) or canonical decimal text (SQLite), read as canonical text."""

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if isinstance(value, Decimal):
            return format(value, "f")
        return value

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return format(value, "f")
        return value


class TextDate(models.TextField):
    """A date stored as ISO text (SQLite), read as text."""


def _model_field(field: FieldSpec, column: str) -> models.Field:
    kind = field_type(field.type)
    pg = is_postgres()
    options: dict[str, Any] = {"db_column": column, "null": True}
    if kind.sql_type == "bigint":
        return models.BigIntegerField(**options)
    if kind.sql_type == "double precision":
        return models.FloatField(**options)
    if kind.sql_type == "boolean":
        return models.BooleanField(**options)
    if kind.sql_type == "numeric":
        return DecimalText(**options)
    if kind.sql_type == "date" and pg:
        return models.DateField(**options)
    if kind.sql_type == "timestamptz" and pg:
        return models.DateTimeField(**options)
    return models.TextField(**options)


class RecordBase(models.Model):
    """What every dataset's record model has: the lineage columns."""

    key = models.TextField(primary_key=True, db_column="_key")
    first_run_id = models.BigIntegerField(db_column="_first_run_id")
    last_run_id = models.BigIntegerField(db_column="_last_run_id")
    source_line = models.IntegerField(db_column="_source_line")
    schema_number = models.IntegerField(db_column="_schema_version")
    created_at = models.DateTimeField(db_column="_created_at")
    updated_at = models.DateTimeField(db_column="_updated_at")

    # Set on each concrete model: schema field name → attribute name.
    field_attributes: dict[str, str] = {}
    # Declared for type checking only: Django gives each concrete record model its manager.
    objects: ClassVar[models.Manager[RecordBase]]

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.key

    @property
    def data(self) -> dict[str, Any]:
        """The values by field name, in schema order, as docs/schema.md stores them."""
        return {name: json_value(getattr(self, attr)) for name, attr in self.field_attributes.items()}


# Models of dataset tables live in a registry of their own: they come and go
# with datasets and schema versions, and Django's must not learn of them
# (no migrations, no admin, no reverse relations).
_apps = Apps()


@lru_cache(maxsize=256)
def _model(vendor: str, table: str, schema: str, fields: tuple[tuple[str, str], ...]) -> type[RecordBase]:
    specs = [FieldSpec(name=name, type=kind) for name, kind in fields]
    # Attribute names of their own: a field may be called "pk", "save" or "a__b".
    attributes = {spec.name: f"f{i}" for i, spec in enumerate(specs)}
    digest = hashlib.blake2b(repr((vendor, table, schema, fields)).encode(), digest_size=8).hexdigest()
    known = _apps.all_models["processing"].get(f"record_{digest}")
    if known is not None:  # made before, and since dropped from the cache
        return cast(type[RecordBase], known)  # record_ models are made only below, from RecordBase
    db_table = f'{schema}"."{table}' if vendor == "postgresql" else table
    meta = type("Meta", (), {"app_label": "processing", "db_table": db_table, "managed": False, "apps": _apps})
    attrs: dict[str, Any] = {
        "__module__": __name__,
        "Meta": meta,
        "field_attributes": attributes,
        **{attributes[spec.name]: _model_field(spec, spec.name) for spec in specs},
    }
    return type(f"Record_{digest}", (RecordBase,), attrs)


def record_model(slug: str, spec: SchemaSpec) -> type[RecordBase]:
    """A Django model over the dataset's table as the schema describes it (cached)."""
    fields = tuple((f.name, f.type) for f in spec.fields)
    return _model(connection.vendor, table_name(slug), table_schema(), fields)


def field_attribute(model: type[RecordBase], name: str) -> str:
    return model.field_attributes[name]


def records_of(dataset: Dataset) -> models.QuerySet[RecordBase]:
    """Every current record of a dataset (its table as its current schema describes it)."""
    if dataset.current_schema is None:
        raise ValueError(f"dataset {dataset.slug!r} has no schema yet")
    return record_model(dataset.slug, schema_spec(dataset.current_schema)).objects.all()


def encode_data(spec: SchemaSpec, values: Sequence[Any]) -> str:
    """The JSON text of ``data`` for values in column order (as read from the table)."""
    return _dumps({f.name: json_value(v) for f, v in zip(spec.fields, values, strict=True)})


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
