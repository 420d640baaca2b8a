"""Reading a dataset's records: typed filters, ordering and keyset positions.

Records are the rows of the dataset's own table (``record_tables``), one
typed column per field, so filters and orderings are SQL predicates on
those columns and compare what values mean:

* **numbers** (integer, decimal, float) as numbers (on SQLite decimals are
  canonical text, cast to a number to compare);
* **booleans** as booleans;
* **dates and date-times** as times (on SQLite their canonical text, whose
  text order is time order); query values are parsed as the field parses;
* **text** (string, email, url) as text.

Nulls match no comparison and sort last. Lists are paged by keyset
(``records_after``), never by offset or count.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import DecimalField, Expression, F, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import StrIndex
from django.db.models.query import BaseIterable, ValuesListIterable

from ingestion.fieldtypes import FIELD_TYPES, field_type
from ingestion.models import Dataset
from ingestion.schema import FieldSpec, SchemaSpec

from .models import Run
from .pipeline.validate import compile_field
from .record_tables import RecordBase, encode_data, json_value, record_model

# Operators a filter may use; each field type says which it supports ("eq" is also written without a suffix: ?field=v).
OPERATORS = tuple(dict.fromkeys(op for t in FIELD_TYPES.values() for op in t.operators))
# Every field also takes ``field__isnull=true`` (only nulls) or ``=false`` (only values).
NULL_OPERATOR = "isnull"
MAX_IN_VALUES = 100
MAX_FILTERS = 30
BUILTIN_ORDERINGS = ("key", "updated_at")
_CANONICAL_DECIMAL = r"^-?[0-9]+([.][0-9]+)?$"
_CANONICAL_DECIMAL_RE = re.compile(_CANONICAL_DECIMAL)


def field_kind(field_type_name: str) -> str:
    """How values of a type are compared: ``number``, ``boolean`` or ``text`` (declared by the type)."""
    return field_type(field_type_name).filter_kind


class _SqliteNumber(Func):
    """A decimal column of SQLite (canonical text) as a number, so it compares and sorts as one."""

    template = "CAST(%(expressions)s AS NUMERIC)"
    output_field = DecimalField()


def field_column(model: type[RecordBase], field: FieldSpec) -> Any:
    """The expression filters and orderings use for a field: its column."""
    column = F(model.field_attributes[field.name])
    if connection.vendor == "sqlite" and field_type(field.type).sql_type == "numeric":
        return _SqliteNumber(column)
    return column


def sort_value(field: FieldSpec, value: Any) -> Any:
    """A stored value as ``FieldValue`` sees it, in Python (None where SQL gives NULL)."""
    kind = field_kind(field.type)
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Decimal(str(value))
        if isinstance(value, str) and _CANONICAL_DECIMAL_RE.match(value):
            return Decimal(value)
        return None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else None


# --- Filters -------------------------------------------------------------------------


def _value_parser(field: FieldSpec) -> Callable[[str], Any]:
    """Parse a query value the way the field's values were parsed, without its constraints.

    Text is compared as given. Other types accept the canonical forms of
    docs/schema.md (no thousands separators or decimal commas); a date-time
    without an offset is read in the field's ``default_timezone``.
    """
    kind = field_type(field.type)
    if kind.is_text:
        return lambda raw: raw
    options = {k: v for k, v in field.options.items() if k in ("default_timezone", "formats")}
    bare = dataclasses.replace(field, required=False, transforms=(), null_values=(), constraints={}, options=options)
    convert = compile_field(bare)
    numeric = kind.filter_kind == "number"

    def parse(raw: str) -> Any:
        if not raw.strip():
            raise ValueError("a value is required")
        value = convert(raw)
        return Decimal(str(value)) if numeric else value

    return parse


def _split_param(param: str, fields: dict[str, FieldSpec]) -> tuple[FieldSpec, str] | None:
    if param in fields:
        return fields[param], "eq"
    name, _, op = param.rpartition("__")
    if name in fields and (op in OPERATORS or op == NULL_OPERATOR):
        return fields[name], op
    return None


def records_filter(
    queryset: QuerySet[RecordBase], spec: SchemaSpec, params: Iterable[tuple[str, str]]
) -> QuerySet[RecordBase]:
    """Apply ``?field=v``, ``field__gte``, ``__lte``, ``__in`` (comma-separated), ``__contains``, ``__isnull``.

    The records API and the console's data page both read their filters
    here, so a filter is spelled and means the same through either door.

    ``params`` are (name, value) pairs; repeated names all apply. Raises
    ``ValidationError({param: [message]})`` naming every bad parameter.
    """
    fields = {f.name: f for f in spec.fields}
    errors: dict[str, list[str]] = {}
    conditions: list[Q] = []
    aliases: dict[str, Any] = {}
    pairs = list(params)
    if len(pairs) > MAX_FILTERS:
        raise ValidationError({"filters": [f"at most {MAX_FILTERS} filters per request, got {len(pairs)}"]})
    for i, (param, raw) in enumerate(pairs):
        found = _split_param(param, fields)
        if found is None:
            errors.setdefault(param, []).append(
                "unknown parameter; filter on a field of the schema: " + ", ".join(fields)
            )
            continue
        field, op = found
        if op == NULL_OPERATOR:
            if raw not in ("true", "false"):
                errors.setdefault(param, []).append("must be true (only nulls) or false (only values)")
                continue
            conditions.append(Q(**{f"{queryset.model.field_attributes[field.name]}__isnull": raw == "true"}))
            continue
        allowed = field_type(field.type).operators
        if op not in allowed:
            errors.setdefault(param, []).append(
                f"{field.name} is a {field.type} field; it supports "
                + ", ".join("=" if o == "eq" else f"__{o}" for o in (*allowed, NULL_OPERATOR))
            )
            continue
        parse = _value_parser(field)
        try:
            if op == "in":
                items = raw.split(",")
                if len(items) > MAX_IN_VALUES:
                    raise ValueError(f"at most {MAX_IN_VALUES} values, got {len(items)}")
                value: Any = [parse(item) for item in items]
            else:
                value = parse(raw)
        except ValueError as exc:  # FieldError is a ValueError
            errors.setdefault(param, []).append(str(exc))
            continue
        alias = f"_filter_{i}"
        expr = field_column(queryset.model, field)
        if op == "contains":
            aliases[alias] = StrIndex(expr, Value(value))
            conditions.append(Q(**{f"{alias}__gt": 0}))
        else:
            aliases[alias] = expr
            lookup = {"eq": "exact", "gte": "gte", "lte": "lte", "in": "in"}[op]
            conditions.append(Q(**{f"{alias}__{lookup}": value}))
    if errors:
        raise ValidationError(errors)
    if aliases:
        queryset = queryset.alias(**aliases)
    if conditions:
        queryset = queryset.filter(*conditions)
    return queryset


def search_fields(spec: SchemaSpec) -> list[FieldSpec]:
    """The fields a search looks in: every text field (string, email, url)."""
    return [f for f in spec.fields if field_type(f.type).is_text]


def records_search(queryset: QuerySet[RecordBase], spec: SchemaSpec, text: str) -> QuerySet[RecordBase]:
    """Records with ``text`` in any text field, ignoring case; no records when the schema has no text field."""
    if not text:
        return queryset
    fields = search_fields(spec)
    if not fields:
        return queryset.none()
    attributes = queryset.model.field_attributes
    condition = Q()
    for f in fields:
        condition |= Q(**{f"{attributes[f.name]}__icontains": text})
    return queryset.filter(condition)


# --- Ordering and keyset positions -------------------------------------------------------


@dataclass(frozen=True)
class RecordOrdering:
    """``key``, ``updated_at`` or a schema field, ascending or descending; ties go by key."""

    name: str
    descending: bool = False
    field: FieldSpec | None = None

    @property
    def text(self) -> str:
        return ("-" if self.descending else "") + self.name


def record_orderings(spec: SchemaSpec) -> list[str]:
    """Every accepted ``ordering`` value."""
    names = [*BUILTIN_ORDERINGS, *(f.name for f in spec.fields if f.name not in BUILTIN_ORDERINGS)]
    return [p + n for n in names for p in ("", "-")]


def record_ordering_parse(spec: SchemaSpec, raw: str | None) -> RecordOrdering:
    """Read ``?ordering=``; a ValidationError lists the accepted values."""
    if not raw:
        return RecordOrdering("key")
    descending = raw.startswith("-")
    name = raw[1:] if descending else raw
    if name in BUILTIN_ORDERINGS:
        return RecordOrdering(name, descending)
    field = next((f for f in spec.fields if f.name == name), None)
    if field is None:
        raise ValidationError(
            {"ordering": [f"unknown ordering {raw!r}; use one of {', '.join(record_orderings(spec))}"]}
        )
    return RecordOrdering(name, descending, field)


def _order_expression(model: type[RecordBase], ordering: RecordOrdering) -> Any:
    if ordering.field is None:
        return F(ordering.name)
    return field_column(model, ordering.field)


def records_ordered(
    queryset: QuerySet[RecordBase], ordering: RecordOrdering, *, backwards: bool = False
) -> QuerySet[RecordBase]:
    """Order by the ordering then key; nulls come last (first when walking ``backwards``)."""
    descending = ordering.descending != backwards
    tie = "-key" if descending else "key"
    if ordering.name == "key":
        return queryset.order_by(tie)
    queryset = queryset.alias(_sort=_order_expression(queryset.model, ordering))
    # Walking backwards reverses everything, so nulls come first.
    nulls = {"nulls_first": True} if backwards else {"nulls_last": True}
    sort = F("_sort").desc(**nulls) if descending else F("_sort").asc(**nulls)
    return queryset.order_by(sort, tie)


def record_position(record: Any, ordering: RecordOrdering) -> tuple[Any, str]:
    """Where a record sits in an ordering: (sort value, key)."""
    if ordering.name == "key":
        return record.key, record.key
    if ordering.name == "updated_at":
        return record.updated_at, record.key
    assert ordering.field is not None
    return sort_value(ordering.field, record.data.get(ordering.field.name)), record.key


def records_after(
    queryset: QuerySet[RecordBase], ordering: RecordOrdering, position: tuple[Any, str], *, backwards: bool = False
) -> QuerySet[RecordBase]:
    """The records after ``position`` in the ordering (before it when ``backwards``).

    The queryset must come from ``records_ordered`` with the same ordering.
    Nulls sort after every value, so the conditions treat them apart.
    """
    value, key = position
    after = ordering.descending == backwards  # compare upwards?
    op = "gt" if after else "lt"
    if ordering.name == "key":
        return queryset.filter(**{f"key__{op}": key})
    target = "updated_at" if ordering.name == "updated_at" else "_sort"
    if ordering.name != "updated_at" and "_sort" not in queryset.query.annotations:
        queryset = queryset.alias(_sort=_order_expression(queryset.model, ordering))
    forwards = not backwards
    if value is None:
        condition = Q(**{f"{target}__isnull": True, f"key__{op}": key})
        if not forwards:
            condition |= Q(**{f"{target}__isnull": False})
    else:
        condition = Q(**{f"{target}__{op}": value}) | Q(**{target: value, f"key__{op}": key})
        if forwards and target == "_sort":
            condition |= Q(**{f"{target}__isnull": True})
    return queryset.filter(condition)


# --- Use cases ---------------------------------------------------------------------------


def records_list(
    dataset: Dataset,
    spec: SchemaSpec,
    *,
    filters: Iterable[tuple[str, str]] = (),
    ordering: RecordOrdering | None = None,
    run: Run | None = None,
    backwards: bool = False,
) -> QuerySet[RecordBase]:
    """A dataset's records, filtered and ordered (page it with ``records_after`` and a slice).

    ``spec`` is the dataset's current schema, which its table has.
    """
    queryset = record_model(dataset.slug, spec).objects.all()
    if run is not None:
        queryset = queryset.filter(last_run_id=run.pk)
    queryset = records_filter(queryset, spec, filters)
    return records_ordered(queryset, ordering or RecordOrdering("key"), backwards=backwards)


@dataclass(slots=True)
class RecordRow:
    """A record of a list page as plain values, its ``data`` already encoded as JSON text.

    Pages write ``data_json`` into the response as it is.
    """

    key: str
    data_json: str
    schema_number: int
    first_run_id: int
    last_run_id: int
    source_line: int
    created_text: str
    updated_text: str

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.data_json)

    @property
    def created_at(self) -> datetime:
        return utc_text_moment(self.created_text)

    @property
    def updated_at(self) -> datetime:
        return utc_text_moment(self.updated_text)


def utc_text_moment(text: str) -> datetime:
    """The aware datetime of a timestamp read as UTC text (``RecordRow.created_text``, ``updated_text``)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class _UtcText(Func):
    """A timestamp as ISO 8601 text in UTC, without its offset.

    The driver reads text in C, while Django's loader for ``timestamptz``
    runs Python for every value: two timestamps a record were ~540 µs of a
    100-record page. ``to_char`` does not depend on the session's DateStyle.
    SQLite stores datetimes as such text already (read as text, not parsed).
    """

    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="CAST(%(expressions)s AS TEXT)", **extra)


_LINEAGE_FIELDS = ["schema_number", "first_run_id", "last_run_id", "source_line", "created_text", "updated_text"]


class _CanonicalText(Func):
    """A date, date-time or decimal column as the canonical text of docs/schema.md (PostgreSQL).

    Read as text in SQL, so no value depends on the session's DateStyle and
    none is parsed into Python only to be written out again.
    """

    output_field = TextField()
    TEMPLATES = {
        "timestamptz": "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        "date": "to_char(%(expressions)s, 'YYYY-MM-DD')",
        "numeric": "(%(expressions)s)::text",
    }


def _value_reads(model: type[RecordBase], spec: SchemaSpec) -> dict[str, Any]:
    """Alias → expression reading each field's value in its canonical JSON form."""
    reads: dict[str, Any] = {}
    postgres = connection.vendor == "postgresql"
    for i, field in enumerate(spec.fields):
        column = F(model.field_attributes[field.name])
        template = _CanonicalText.TEMPLATES.get(field_type(field.type).sql_type) if postgres else None
        reads[f"_v{i}"] = _CanonicalText(column, template=template) if template else column
    return reads


# Each SQL type's value as the JSON text ``encode_data`` writes for it (PostgreSQL);
# dates, date-times and decimals are JSON strings of their canonical text (_CanonicalText).
_JSON_READS = {
    "text": "to_json({})::text",
    "bigint": "({})::text",
    "boolean": "({})::text",
    **{
        kind: "to_json(" + template % {"expressions": "{}"} + ")::text"
        for kind, template in _CanonicalText.TEMPLATES.items()
    },
}


class _TableSql(Expression):
    """SQL over the query's own table, written once per table and schema rather than built per query.

    ``parts`` are joined with the table's quoted name (each column reference
    is ``"table"."column"``, as Django writes it). With no source expressions
    there is nothing for Django to resolve, and the identity it hashes while
    compiling is a short tuple: building and compiling the ten column
    expressions of a page's ``data`` was a third of a records page's fixed
    CPU. For queries on the dataset's table alone (no joins change its alias).
    """

    output_field = TextField()

    def __init__(self, parts: tuple[str, ...], params: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.parts = parts
        self.params = params

    @cached_property
    def identity(self) -> tuple[Any, ...]:
        return (type(self), self.parts, self.params)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        table = compiler.quote_name_unless_alias(compiler.query.base_table)
        return table.join(self.parts), list(self.params)


# Where the table's quoted name goes in a _TableSql template (no identifier or template holds a NUL).
_TABLE = "\x00"


def _table_column(model: type[RecordBase], attribute: str) -> str:
    column = cast(Any, model._meta.get_field(attribute)).column
    return f"{_TABLE}.{connection.ops.quote_name(column)}"


class _DataJson:
    """A record's ``data`` as the JSON text ``encode_data`` writes, built by PostgreSQL.

    Python then only places each record's text in the page: decoding ten
    typed values and encoding them again was a third of a page's CPU.
    ``to_json`` escapes text exactly as ``json.dumps(ensure_ascii=False)``
    does. Not for float columns: PostgreSQL spells some of them otherwise
    (``1e+15`` for Python's ``1000000000000000.0``).
    """

    @staticmethod
    @lru_cache(maxsize=256)
    def _sql(model: type[RecordBase], names: tuple[str, ...], kinds: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        parts: list[str] = []
        params: list[str] = []
        for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
            column = _table_column(model, model.field_attributes[name])
            # The name (an identifier) goes as a parameter, the value's text is never null.
            parts.append(f"%s || coalesce({_JSON_READS[kind].format(column)}, 'null')")
            params.append(("{" if i == 0 else ",") + json.dumps(name) + ":")
        return "(" + " || ".join(parts) + " || '}')", tuple(params)

    @classmethod
    def of(cls, model: type[RecordBase], spec: SchemaSpec) -> _TableSql:
        names = tuple(f.name for f in spec.fields)
        kinds = tuple(field_type(f.type).sql_type for f in spec.fields)
        sql, params = cls._sql(model, names, kinds)
        return _TableSql(tuple(sql.split(_TABLE)), params)

    @staticmethod
    def supports(spec: SchemaSpec) -> bool:
        return connection.vendor == "postgresql" and all(
            field_type(f.type).sql_type in _JSON_READS for f in spec.fields
        )


@lru_cache(maxsize=256)
def _utc_text_sql(model: type[RecordBase], attribute: str) -> tuple[str, ...]:
    """``_UtcText`` of a timestamp column on PostgreSQL, as ``_TableSql`` parts."""
    column = _table_column(model, attribute)
    return tuple(f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')".split(_TABLE))


def records_rows(queryset: QuerySet[RecordBase], spec: SchemaSpec) -> QuerySet[Any]:
    """``records_list``'s queryset yielding ``RecordRow`` objects (it can still be filtered and sliced)."""
    if _DataJson.supports(spec):
        model = queryset.model
        rows = queryset.annotate(
            data_text=_DataJson.of(model, spec),
            created_text=_TableSql(_utc_text_sql(model, "created_at")),
            updated_text=_TableSql(_utc_text_sql(model, "updated_at")),
        ).values_list("key", "data_text", *_LINEAGE_FIELDS)
        rows._iterable_class = _PlainRows
        return rows
    reads = _value_reads(queryset.model, spec)
    width = len(reads)

    class Rows(BaseIterable):
        def __iter__(self) -> Any:
            values: tuple[Any, ...]
            for values in ValuesListIterable(self.queryset):
                yield RecordRow(values[0], encode_data(spec, values[1 : width + 1]), *values[width + 1 :])

    rows = queryset.annotate(
        **reads, created_text=_UtcText("created_at"), updated_text=_UtcText("updated_at")
    ).values_list("key", *reads, *_LINEAGE_FIELDS)
    # As values_list(named=True) does: the same query, another shape per row.
    rows._iterable_class = Rows
    return rows


class _PlainRows(BaseIterable):
    def __iter__(self) -> Any:
        rows: Iterable[tuple[Any, ...]] = ValuesListIterable(self.queryset)
        return (RecordRow(*values) for values in rows)


@dataclass(frozen=True)
class RecordSelection:
    """Which records an export writes: the records API's filters, a data page's search and run (default: all)."""

    filters: tuple[tuple[str, str], ...] = ()
    search: str = ""
    run_id: int | None = None


def records_selected(dataset: Dataset, spec: SchemaSpec, selection: RecordSelection) -> QuerySet[RecordBase]:
    """The records of a selection, unordered; raises ``ValidationError`` for a bad filter (before any query)."""
    queryset = record_model(dataset.slug, spec).objects.all()
    if selection.run_id is not None:
        queryset = queryset.filter(last_run_id=selection.run_id)
    return records_search(records_filter(queryset, spec, selection.filters), spec, selection.search)


def records_data(
    dataset: Dataset, spec: SchemaSpec, *, chunk: int = 2000, selection: RecordSelection | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, data) of every record (or those of ``selection``) in key order, streamed (exports).

    Check a selection with ``records_selected`` before streaming: a bad filter raises here only on the first read.
    """
    model = record_model(dataset.slug, spec)
    reads = _value_reads(model, spec)
    names = [f.name for f in spec.fields]
    queryset = records_selected(dataset, spec, selection) if selection is not None else model.objects.all()
    for values in queryset.annotate(**reads).order_by("key").values_list("key", *reads).iterator(chunk):
        yield values[0], {name: json_value(v) for name, v in zip(names, values[1:], strict=True)}


def record_get(dataset: Dataset, spec: SchemaSpec, key: str) -> RecordBase | None:
    """One record by natural key, with the runs of its lineage (``first_run``, ``last_run``)."""
    record = record_model(dataset.slug, spec).objects.filter(key=key).first()
    if record is not None:
        runs = Run.objects.select_related("raw_file").in_bulk([record.first_run_id, record.last_run_id])
        # Extra attributes for the views, which show the lineage; not fields of the model.
        record.first_run = runs[record.first_run_id]  # type: ignore[attr-defined]  # set here only
        record.last_run = runs[record.last_run_id]  # type: ignore[attr-defined]  # set here only
    return record


def run_of_dataset(dataset: Dataset, run_id: int) -> Run | None:
    return Run.objects.filter(dataset=dataset, pk=run_id).first()


def position_value_parse(ordering: RecordOrdering, raw: Any) -> Any:
    """Turn a position value read back from a client (a cursor) into a comparable value.

    Raises ``ValueError`` when it cannot belong to the ordering.
    """
    if ordering.name == "key":
        if not isinstance(raw, str):
            raise ValueError("bad key position")
        return raw
    if ordering.name == "updated_at":
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        if moment is None or moment.tzinfo is None:
            raise ValueError("bad time position")
        return moment
    assert ordering.field is not None
    if raw is None:
        return None
    kind = field_kind(ordering.field.type)
    if kind == "number":
        try:
            number = Decimal(raw) if isinstance(raw, str) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise ValueError("bad number position")
        return number
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise ValueError("bad boolean position")
        return raw
    if not isinstance(raw, str):
        raise ValueError("bad text position")
    return raw
