"""Reads behind the console's data page: one dataset's records as a filtered, sorted, searchable table.

The page takes the records API's filters as they are (``record_queries.records_filter``)
and pages by the same keyset positions (``record_position`` / ``records_after``),
ordering by the sort column then ``_key``; nothing here counts or offsets the
whole table. Its own parameters all start with ``_`` (no schema field does):

* ``_sort=field`` / ``_sort=-field`` (``_key`` and ``_updated_at`` too);
* ``_search=text``: case-insensitive "contains" over every text field;
* ``_next=`` / ``_prev=``: keyset positions from the page's links;
* ``_size=``: records per page; ``_lineage=1``: show the lineage columns;
* ``_run=``: only the records a run last wrote.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import F, Q, QuerySet

from ingestion.fieldtypes import field_type
from ingestion.models import Dataset
from ingestion.schema import FieldSpec, SchemaSpec

from .models import Run
from .record_queries import (
    RecordOrdering,
    RecordRow,
    position_value_parse,
    record_position,
    records_after,
    records_list,
    records_rows,
    records_search,
)
from .record_tables import RecordBase

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Facets: fields with at most FACET_MAX_VALUES distinct values in the view, counted only when the
# view holds at most FACET_MAX_ROWS records (a bounded read), for at most FACET_MAX_FIELDS fields.
FACET_MAX_VALUES = 30
FACET_MAX_ROWS = 20_000
FACET_MAX_FIELDS = 10
# A view of at most this many records is counted in Python from one bounded read; in a larger one, a
# field with more distinct values than FACET_MAX_VALUES among its first this many records is no facet.
FACET_SAMPLE_ROWS = 1000
# The page's own parameters; any other is a filter.
PAGE_PARAMS = ("_sort", "_search", "_next", "_prev", "_size", "_lineage", "_run")
# Lineage columns the page can sort by, and the ordering each means.
LINEAGE_SORTS = {"_key": "key", "_updated_at": "updated_at"}


def data_filters(params: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The filter parameters among a query's (name, value) pairs: every name not starting with ``_``."""
    return [(name, value) for name, value in params if not name.startswith("_")]


def data_ordering_parse(spec: SchemaSpec, raw: str) -> RecordOrdering:
    """``?_sort=``: a field, ``_key`` or ``_updated_at``, ``-`` first for descending (ValidationError otherwise)."""
    if not raw:
        return RecordOrdering("key")
    descending = raw.startswith("-")
    name = raw.removeprefix("-")
    if name in LINEAGE_SORTS:
        return RecordOrdering(LINEAGE_SORTS[name], descending)
    found = next((f for f in spec.fields if f.name == name), None)
    if found is None:
        raise ValidationError({"_sort": [f"unknown column {name!r}; sort by a field, _key or _updated_at"]})
    return RecordOrdering(name, descending, found)


def ordering_text(ordering: RecordOrdering) -> str:
    """The ``_sort`` value of an ordering."""
    name = next((k for k, v in LINEAGE_SORTS.items() if v == ordering.name), ordering.name)
    return ("-" if ordering.descending else "") + name


def position_encode(position: tuple[Any, str]) -> str:
    value, key = position
    if isinstance(value, Decimal):
        value = str(value)
    elif isinstance(value, datetime):
        value = value.isoformat()
    return json.dumps([value, key], separators=(",", ":"))


def position_decode(ordering: RecordOrdering, raw: str, param: str = "_next") -> tuple[Any, str]:
    """A ``_next`` / ``_prev`` value read back (ValidationError when it is not one of this ordering)."""
    try:
        value, key = json.loads(raw)
        if not isinstance(key, str):
            raise ValueError(key)
        return position_value_parse(ordering, value), key
    except (ValueError, TypeError, InvalidOperation):
        raise ValidationError({param: ["is not a position of this view; start again from the first page"]}) from None


@dataclass
class DataPage:
    """One page of the view: its rows in order and the positions of its neighbours (None: no such page)."""

    rows: list[RecordRow]
    next_position: str | None
    previous_position: str | None


@dataclass
class Facet:
    """A field's distinct values in the view with their counts, most frequent first (None is null)."""

    field: FieldSpec
    values: list[tuple[Any, int]]


def data_view(
    dataset: Dataset,
    spec: SchemaSpec,
    *,
    filters: list[tuple[str, str]],
    search: str = "",
    ordering: RecordOrdering | None = None,
    run: Run | None = None,
    backwards: bool = False,
) -> QuerySet[RecordBase]:
    """The view's records, filtered (as the API filters), searched and ordered; raises ValidationError."""
    queryset = records_list(dataset, spec, filters=filters, ordering=ordering, run=run, backwards=backwards)
    return records_search(queryset, spec, search)


def data_page(
    queryset_for: Any,
    spec: SchemaSpec,
    ordering: RecordOrdering,
    *,
    size: int,
    after: tuple[Any, str] | None = None,
    before: tuple[Any, str] | None = None,
) -> DataPage:
    """A keyset page: the first, the one after ``after`` or the one before ``before``.

    ``queryset_for(backwards)`` gives the view ordered forwards or backwards
    (``data_view``). ``size + 1`` rows, no OFFSET (one query; two when a
    field sort's page reaches the records without a value): as fast at page
    1,000 as at page 1, given an index on the sort column.
    """
    backwards = before is not None
    queryset = queryset_for(backwards)
    if ordering.field is not None:
        rows = _field_page_rows(queryset, spec, ordering, backwards, after or before, size + 1)
    else:
        if after is not None:
            queryset = records_after(queryset, ordering, after)
        elif before is not None:
            queryset = records_after(queryset, ordering, before, backwards=True)
        rows = list(records_rows(queryset, spec)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    if not rows:
        return DataPage(rows, None, None)
    has_next = more if not backwards else True
    has_previous = more if backwards else after is not None
    return DataPage(
        rows,
        position_encode(record_position(rows[-1], ordering)) if has_next else None,
        position_encode(record_position(rows[0], ordering)) if has_previous else None,
    )


def _field_page_rows(
    queryset: QuerySet[RecordBase],
    spec: SchemaSpec,
    ordering: RecordOrdering,
    backwards: bool,
    position: tuple[Any, str] | None,
    limit: int,
) -> list[RecordRow]:
    """The first ``limit`` rows of a view sorted by a field, from ``position`` on (walking ``backwards``).

    Nulls sort after every value (``records_ordered``): ``ORDER BY field DESC
    NULLS LAST`` is an order that an index on ``(field, _key)`` cannot give,
    and a position's condition ``field < v OR (field = v AND _key < k) OR field
    IS NULL`` is no index range. PostgreSQL then reads and sorts the whole view
    for every page. So the records with a value and those without are read
    apart, in the order of the walk: the first with ``ORDER BY field, _key``
    (either way: the index read forwards or backwards) from ``field >= v`` /
    ``field <= v``, an index range; the others, ordered by key, only if the
    page is not full yet. Same rows, same order as one query.
    """
    down = ordering.descending != backwards  # the direction of this walk in SQL
    op = "lt" if down else "gt"
    valued = queryset.filter(_sort__isnull=False).order_by(
        F("_sort").desc() if down else F("_sort").asc(), "-key" if down else "key"
    )
    nulls = queryset.filter(_sort__isnull=True).order_by("-key" if down else "key")
    if position is not None:
        value, key = position
        if value is None:
            # A null's position: the values come before every null, the nulls go on by key.
            nulls = nulls.filter(**{f"key__{op}": key})
            valued = valued if backwards else valued.none()
        else:
            bound = {("_sort__lte" if down else "_sort__gte"): value}
            valued = valued.filter(**bound).filter(Q(**{f"_sort__{op}": value}) | Q(_sort=value, **{f"key__{op}": key}))
            nulls = nulls.none() if backwards else nulls
    parts = (nulls, valued) if backwards else (valued, nulls)
    rows: list[RecordRow] = []
    for part in parts:
        if len(rows) < limit:
            rows += records_rows(part, spec)[: limit - len(rows)]
    return rows


def facet_fields(spec: SchemaSpec) -> list[FieldSpec]:
    """The fields offered as facets: text and boolean fields, the first ten.

    Dates and numbers rarely repeat; a field that is the whole key never does.
    """
    unique = set(spec.key) if len(spec.key) == 1 else set()
    kinds = [
        f
        for f in spec.fields
        if f.name not in unique and (field_type(f.type).is_text or field_type(f.type).filter_kind == "boolean")
    ]
    return kinds[:FACET_MAX_FIELDS]


def data_facets(queryset: QuerySet[RecordBase], spec: SchemaSpec, *, fixed: Iterable[str] = ()) -> list[Facet] | None:
    """Value counts of each facet field over the view; None when the view is too large to count.

    Bounded, and every read of the view has a LIMIT: first the facet columns
    of ``FACET_SAMPLE_ROWS + 1`` records; a view that small is counted from
    them. Otherwise a field with more than ``FACET_MAX_VALUES`` distinct values
    among them is no facet, and the columns of the others are read for at most
    ``FACET_MAX_ROWS + 1`` records and counted here (more records: None). On
    PostgreSQL a view the planner estimates at over twice that is not read at
    all (None). One pass over the view's records, where a ``GROUP BY`` per
    field would read them all once per field. The ``fixed`` fields (an
    equality filter holds them to one value) are left out.
    """
    skip = set(fixed)
    fields = [f for f in facet_fields(spec) if f.name not in skip]
    if not fields:
        return []
    base = queryset.order_by()
    columns = [queryset.model.field_attributes[f.name] for f in fields]
    rows = list(base.values_list(*columns)[: FACET_SAMPLE_ROWS + 1])
    if len(rows) > FACET_SAMPLE_ROWS:
        keep = [i for i in range(len(fields)) if len({row[i] for row in rows}) <= FACET_MAX_VALUES]
        if not keep:
            return []  # every field has too many values already among the first records
        # Reading the columns of FACET_MAX_ROWS records only to learn that there are more costs a pass over
        # the table when the view's records are spread over it: skip a view the planner puts far above.
        estimate = _rows_estimate(base)
        if estimate is not None and estimate > 2 * FACET_MAX_ROWS:
            return None
        fields = [fields[i] for i in keep]
        rows = list(base.values_list(*[columns[i] for i in keep])[: FACET_MAX_ROWS + 1])
    if len(rows) > FACET_MAX_ROWS:
        return None
    facets = []
    for i, f in enumerate(fields):
        counted = Counter(row[i] for row in rows)
        if 0 < len(counted) <= FACET_MAX_VALUES:
            facets.append(Facet(f, sorted(counted.items(), key=_facet_order)))
    return facets


def _rows_estimate(queryset: QuerySet[RecordBase]) -> int | None:
    """How many rows PostgreSQL's planner expects the queryset to give (EXPLAIN: nothing is read)."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.explain(format="json"))
    if isinstance(plan, list):
        plan = plan[0]
    return int(plan["Plan"]["Plan Rows"])


def _facet_order(item: tuple[Any, int]) -> tuple[int, bool, Any]:
    """Most frequent first, then by value (null last)."""
    value, n = item
    return (-n, value is None, value if value is not None else 0)
