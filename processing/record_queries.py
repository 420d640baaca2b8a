"""Reading a dataset's records: typed filters, ordering and keyset positions.

Record values live in ``Record.data`` (JSON) in the formats of
docs/schema.md. Filters and orderings compare what values mean:

* **numbers** (integer, decimal, float) as exact numbers: decimals are stored
  as canonical strings, so values are cast (``numeric`` on PostgreSQL);
* **booleans** as booleans;
* **text** (string, email, url, date, datetime) as text: dates and datetimes
  are stored in a canonical form whose text order is time order, and query
  values are turned into that form first.

A value whose JSON type does not fit the field's current type (kept from an
earlier schema version) counts as null: it matches no filter and sorts last.

Lists are paged by keyset (``records_after``), never by offset or count.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import NotSupportedError
from django.db.models import BooleanField, DecimalField, Expression, F, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast, StrIndex
from django.db.models.query import BaseIterable, ValuesListIterable

from ingestion.fieldtypes import FIELD_TYPES, field_type
from ingestion.models import Dataset
from ingestion.schema import FieldSpec, SchemaSpec

from .models import Record, Run
from .pipeline.validate import compile_field

# Operators a filter may use; each field type says which it supports ("eq" is also written without a suffix: ?field=v).
OPERATORS = tuple(dict.fromkeys(op for t in FIELD_TYPES.values() for op in t.operators))
MAX_IN_VALUES = 100
MAX_FILTERS = 30
BUILTIN_ORDERINGS = ("key", "updated_at")
_CANONICAL_DECIMAL = r"^-?[0-9]+([.][0-9]+)?$"
_CANONICAL_DECIMAL_RE = re.compile(_CANONICAL_DECIMAL)


def field_kind(field_type_name: str) -> str:
    """How values of a type are compared: ``number``, ``boolean`` or ``text`` (declared by the type)."""
    return field_type(field_type_name).filter_kind


class FieldValue(Expression):
    """One field of ``Record.data`` as a typed SQL value (NULL when absent, null or of another JSON type)."""

    _OUTPUT = {"number": DecimalField, "boolean": BooleanField, "text": TextField}

    def __init__(self, name: str, kind: str) -> None:
        super().__init__(output_field=self._OUTPUT[kind]())
        self.name = name
        self.kind = kind
        self.data: Any = F("data")

    def get_source_expressions(self) -> list[Any]:
        return [self.data]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        (self.data,) = exprs

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        raise NotSupportedError("Filtering records by field needs PostgreSQL or SQLite.")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        d, params = compiler.compile(self.data)
        key = self.name
        if self.kind == "number":
            sql = (
                f"CASE WHEN jsonb_typeof({d} -> %s) = 'number' THEN ({d} ->> %s)::numeric "
                f"WHEN jsonb_typeof({d} -> %s) = 'string' AND ({d} ->> %s) ~ '{_CANONICAL_DECIMAL}' "
                f"THEN ({d} ->> %s)::numeric END"
            )
            return sql, [*params, key, *params, key, *params, key, *params, key, *params, key]
        json_type = "boolean" if self.kind == "boolean" else "string"
        cast = "::boolean" if self.kind == "boolean" else ""
        sql = f"CASE WHEN jsonb_typeof({d} -> %s) = '{json_type}' THEN ({d} ->> %s){cast} END"
        return sql, [*params, key, *params, key]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        d, params = compiler.compile(self.data)
        path = f'$."{self.name}"'
        if self.kind == "number":
            # CAST gives the expression numeric affinity, so text parameters compare as numbers.
            sql = (
                f"CAST(CASE WHEN json_type({d}, %s) IN ('integer', 'real') OR (json_type({d}, %s) = 'text' "
                f"AND json_extract({d}, %s) REGEXP '{_CANONICAL_DECIMAL}') THEN json_extract({d}, %s) END AS NUMERIC)"
            )
            return sql, [*params, path, *params, path, *params, path, *params, path]
        if self.kind == "boolean":
            sql = f"CASE json_type({d}, %s) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"
            return sql, [*params, path]
        sql = f"CASE WHEN json_type({d}, %s) = 'text' THEN json_extract({d}, %s) END"
        return sql, [*params, path, *params, path]


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
    if name in fields and op in OPERATORS:
        return fields[name], op
    return None


def records_filter(queryset: QuerySet[Record], spec: SchemaSpec, params: Iterable[tuple[str, str]]) -> QuerySet[Record]:
    """Apply ``?field=v``, ``field__gte``, ``__lte``, ``__in`` (comma-separated) and ``__contains`` filters.

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
        allowed = field_type(field.type).operators
        if op not in allowed:
            errors.setdefault(param, []).append(
                f"{field.name} is a {field.type} field; it supports "
                + ", ".join("=" if o == "eq" else f"__{o}" for o in allowed)
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
        expr = FieldValue(field.name, field_kind(field.type))
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
        queryset = queryset.alias(**aliases).filter(*conditions)
    return queryset


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


def _order_expression(ordering: RecordOrdering) -> Any:
    if ordering.field is None:
        return F(ordering.name)
    return FieldValue(ordering.field.name, field_kind(ordering.field.type))


def records_ordered(
    queryset: QuerySet[Record], ordering: RecordOrdering, *, backwards: bool = False
) -> QuerySet[Record]:
    """Order by the ordering then key; nulls come last (first when walking ``backwards``)."""
    descending = ordering.descending != backwards
    tie = "-key" if descending else "key"
    if ordering.name == "key":
        return queryset.order_by(tie)
    queryset = queryset.alias(_sort=_order_expression(ordering))
    # Walking backwards reverses everything, so nulls come first.
    nulls = {"nulls_first": True} if backwards else {"nulls_last": True}
    sort = F("_sort").desc(**nulls) if descending else F("_sort").asc(**nulls)
    return queryset.order_by(sort, tie)


def record_position(record: Record, ordering: RecordOrdering) -> tuple[Any, str]:
    """Where a record sits in an ordering: (sort value, key)."""
    if ordering.name == "key":
        return record.key, record.key
    if ordering.name == "updated_at":
        return record.updated_at, record.key
    assert ordering.field is not None
    return sort_value(ordering.field, record.data.get(ordering.field.name)), record.key


def records_after(
    queryset: QuerySet[Record], ordering: RecordOrdering, position: tuple[Any, str], *, backwards: bool = False
) -> QuerySet[Record]:
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
        queryset = queryset.alias(_sort=_order_expression(ordering))
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
) -> QuerySet[Record]:
    """A dataset's records, filtered and ordered (page it with ``records_after`` and a slice).

    Each record carries ``schema_number``, the number of the schema version that validated it.
    """
    # The schema version's number only: its definition would repeat on every row.
    queryset = Record.objects.filter(dataset=dataset).annotate(schema_number=F("schema__number"))
    if run is not None:
        queryset = queryset.filter(last_run=run)
    queryset = records_filter(queryset, spec, filters)
    return records_ordered(queryset, ordering or RecordOrdering("key"), backwards=backwards)


@dataclass(slots=True)
class RecordRow:
    """A record of a list page as plain values, its ``data`` kept as the JSON text the database gives.

    Pages pass ``data_json`` through to the response as it is, rather than
    decoding every record's values into Python and encoding them again.
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


_ROW_FIELDS = [f.name for f in dataclasses.fields(RecordRow)]


class _RecordRowIterable(BaseIterable):
    def __iter__(self) -> Any:
        for values in ValuesListIterable(self.queryset):
            yield RecordRow(*values)


def records_rows(queryset: QuerySet[Record]) -> QuerySet[Any]:
    """``records_list``'s queryset yielding ``RecordRow`` objects (it can still be filtered and sliced)."""
    rows = queryset.annotate(
        data_json=Cast("data", TextField()), created_text=_UtcText("created_at"), updated_text=_UtcText("updated_at")
    ).values_list(*_ROW_FIELDS)
    # As values_list(named=True) does: the same query, another shape per row.
    rows._iterable_class = _RecordRowIterable
    return rows


def record_get(dataset: Dataset, key: str) -> Record | None:
    """One record by natural key, with the runs of its lineage."""
    return (
        Record.objects.filter(dataset=dataset, key=key)
        .select_related("first_run__raw_file", "last_run__raw_file")
        .annotate(schema_number=F("schema__number"))
        .first()
    )


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
