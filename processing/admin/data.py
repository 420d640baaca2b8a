"""The data page: a dataset's records as a table to filter, sort, search, facet, page and export.

``/admin/data/<slug>/`` (registered by the admin site). Filters are the
records API's, spelled the same (``?country=FR``, ``?value__gte=100``); the
page's own parameters start with ``_`` (processing/data_page.py). A user
without a grant on the dataset gets a 404, as in the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from ingestion.fieldtypes import field_type
from ingestion.schema import FieldSpec, SchemaSpec
from ingestion.selectors import schema_spec

from ..data_page import (
    DEFAULT_PAGE_SIZE,
    FACET_MAX_ROWS,
    MAX_PAGE_SIZE,
    data_facets,
    data_filters,
    data_ordering_parse,
    data_page,
    data_view,
    ordering_text,
    position_decode,
)
from ..exports import EXPORT_FORMATS
from ..models import Run
from ..record_queries import (
    NULL_OPERATOR,
    RecordOrdering,
    RecordRow,
    RecordSelection,
    records_selected,
    run_of_dataset,
    search_fields,
)
from .records import console_dataset

# Operators of the filter form, as the records API spells them ("" is equality).
FILTER_OPERATORS = (
    ("", "="),
    ("gte", "≥"),
    ("lte", "≤"),
    ("in", "in (a,b,…)"),
    ("contains", "contains"),
    ("isnull", "is null (true / false)"),
)
# Lineage columns: (name, label, sortable).
LINEAGE = (
    ("_key", "_key", True),
    ("_first_run_id", "_first_run_id", False),
    ("_last_run_id", "_last_run_id", False),
    ("_source_line", "_source_line", False),
    ("_schema_version", "_schema_version", False),
    ("_created_at", "_created_at", False),
    ("_updated_at", "_updated_at", True),
)


def data_url(slug: str, **query: Any) -> str:
    url = reverse("admin:processing_data", args=[slug])
    return url + ("?" + urlencode(query) if query else "")


@dataclass
class Query:
    """The request's query as (name, value) pairs, to build the page's links from."""

    pairs: list[tuple[str, str]]

    def get(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.pairs if k == name), default)

    def url(self, *, drop: tuple[str, ...] = (), remove: tuple[str, str] | None = None, **extra: str) -> str:
        """This query without ``drop`` names and the ``remove`` pair, with ``extra``; keyset positions reset."""
        gone = {*drop, *extra, "_next", "_prev"}
        pairs = [(k, v) for k, v in self.pairs if k not in gone and (k, v) != remove]
        pairs += list(extra.items())
        return "?" + urlencode(pairs)

    def with_pairs(self, *added: tuple[str, str]) -> str:
        pairs = [(k, v) for k, v in self.pairs if k not in ("_next", "_prev")]
        return "?" + urlencode([*pairs, *(p for p in added if p not in pairs)])


def _number(value: Any) -> str:
    if isinstance(value, str):
        try:
            return f"{Decimal(value):,}"
        except ArithmeticError:
            return value
    return f"{value:,}"


def cell(field: FieldSpec, value: Any) -> tuple[str, str]:
    """A value as the table shows it: (text, CSS class). Numbers get thousands separators; null is an em dash."""
    if value is None:
        return "—", "df-null"
    kind = field_type(field.type)
    if kind.filter_kind == "number" and not isinstance(value, bool):
        return _number(value), "df-num"
    if kind.filter_kind == "boolean":
        return ("true" if value else "false"), "df-bool"
    if field.type in ("date", "datetime"):
        return str(value), "df-time"
    return str(value), ""


def _lineage_cells(row: RecordRow) -> list[tuple[str, str, str]]:
    """(text, CSS class, link) of each lineage column."""
    first = reverse("admin:processing_run_change", args=[row.first_run_id])
    last = reverse("admin:processing_run_change", args=[row.last_run_id])
    return [
        (row.key, "", ""),
        (f"#{row.first_run_id}", "df-num", first),
        (f"#{row.last_run_id}", "df-num", last),
        (f"{row.source_line:,}", "df-num", ""),
        (f"v{row.schema_number}", "", ""),
        (row.created_at.isoformat(), "", ""),
        (row.updated_at.isoformat(), "", ""),
    ]


def _facet_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _columns(spec: SchemaSpec, ordering: RecordOrdering, query: Query, lineage: bool) -> list[dict[str, Any]]:
    current = ordering_text(ordering)
    names = [(f.name, f.name, True, field_type(f.type).filter_kind == "number") for f in spec.fields]
    if lineage:
        names += [(n, label, sortable, False) for n, label, sortable in LINEAGE]
    columns = []
    for name, label, sortable, numeric in names:
        arrow = "▲" if current == name else "▼" if current == "-" + name else ""
        flip = "-" + name if current == name else name
        columns.append(
            {
                "name": name,
                "label": label,
                "numeric": numeric,
                "sort_url": query.url(drop=("_sort",), _sort=flip) if sortable else "",
                "arrow": arrow,
            }
        )
    return columns


def _run_of(dataset: Any, raw: str) -> Run | None:
    if not raw:
        return None
    run = run_of_dataset(dataset, int(raw)) if raw.isdigit() and len(raw) <= 18 else None
    if run is None:
        raise ValidationError({"_run": [f"no run {raw} in this dataset"]})
    return run


def _page_size(raw: str) -> int:
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError({"_size": [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]})
    return int(raw)


def data_page_view(request: HttpRequest, slug: str) -> HttpResponse:
    """The data page of one dataset (see the module docstring and docs/console.md, "Data pages")."""
    dataset = console_dataset(request, slug)
    assert dataset.current_schema is not None  # console_dataset answers 404 for a dataset without a schema
    spec = schema_spec(dataset.current_schema)
    query = Query([(k, v) for k, values in request.GET.lists() for v in values])
    if "_ffield" in request.GET:
        # The filter form: field, operator and value become one filter of the URL, as the API spells it.
        name, op = query.get("_ffield"), query.get("_fop")
        param = name if not op else f"{name}__{op}"
        rest = Query([(k, v) for k, v in query.pairs if k not in ("_ffield", "_fop", "_fvalue")])
        return HttpResponseRedirect(rest.with_pairs((param, query.get("_fvalue"))))
    filters = data_filters(query.pairs)
    search = query.get("_search").strip()
    lineage = query.get("_lineage") == "1"
    errors: dict[str, list[str]] = {}
    page = facets = ordering = None
    try:
        ordering = data_ordering_parse(spec, query.get("_sort"))
        size = _page_size(query.get("_size"))
        run = _run_of(dataset, query.get("_run"))
        after = position_decode(ordering, query.get("_next")) if query.get("_next") else None
        before = (
            position_decode(ordering, query.get("_prev"), "_prev") if query.get("_prev") and after is None else None
        )
        sort = ordering

        def view(backwards: bool) -> Any:
            return data_view(dataset, spec, filters=filters, search=search, ordering=sort, run=run, backwards=backwards)

        page = data_page(view, spec, ordering, size=size, after=after, before=before)
        # Facets on a view's first page only: a later page has the same ones, and need not count them again.
        if after is None and before is None:
            fixed = [name for name, _ in filters if "__" not in name]  # an equality filter: one value
            facets = data_facets(view(False), spec, fixed=fixed)
    except ValidationError as exc:
        errors = exc.message_dict
    ordering = ordering or RecordOrdering("key")
    rows = []
    for row in page.rows if page else []:
        data = row.data
        cells = [(*cell(f, data.get(f.name)), "") for f in spec.fields]
        if lineage:
            cells += _lineage_cells(row)
        rows.append({"url": reverse("admin:processing_record", args=[slug, row.key]), "key": row.key, "cells": cells})
    # Every filter of the URL, a bad one too (marked), so each can be removed.
    active = [{"param": k, "value": v, "bad": k in errors, "remove_url": query.url(remove=(k, v))} for k, v in filters]
    export_query = [(k, v) for k, v in query.pairs if not k.startswith("_") or k in ("_search", "_run")]
    context = {
        **admin.site.each_context(request),
        "title": f"Data of {dataset.name}",
        "dataset": dataset,
        "columns": _columns(spec, ordering, query, lineage),
        "rows": rows,
        "errors": [(name, message) for name, messages in errors.items() for message in messages],
        "filters": active,
        "fields": [f.name for f in spec.fields],
        "operators": FILTER_OPERATORS,
        "hidden": [(k, v) for k, v in query.pairs if k not in ("_next", "_prev", "_search")],
        "search": search,
        "search_fields": [f.name for f in search_fields(spec)],
        "facets": [
            {
                "name": facet.field.name,
                "values": [
                    (
                        "null" if value is None else _facet_value(value),
                        value is None,
                        n,
                        query.with_pairs(
                            (f"{facet.field.name}__{NULL_OPERATOR}", "true")
                            if value is None
                            else (facet.field.name, _facet_value(value))
                        ),
                    )
                    for value, n in facet.values
                ],
            }
            for facet in facets or []
        ],
        "facets_skipped": page is not None and facets is None and not query.get("_next") and not query.get("_prev"),
        "facet_max_rows": FACET_MAX_ROWS,
        "lineage": lineage,
        "lineage_url": query.url(drop=("_lineage",)) if lineage else query.url(_lineage="1"),
        "next_url": query.url(_next=page.next_position) if page and page.next_position else "",
        "previous_url": query.url(_prev=page.previous_position) if page and page.previous_position else "",
        "first_url": query.url() if query.get("_next") or query.get("_prev") else "",
        "export_links": _export_links(slug, export_query),
        "sort": ordering_text(ordering),
    }
    return TemplateResponse(request, "admin/processing/data/page.html", context, status=400 if errors else 200)


def _export_links(slug: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [
        (export.label, reverse("admin:processing_data_export", args=[slug, name]) + "?" + urlencode(pairs))
        for name, export in EXPORT_FORMATS.items()
    ]


def data_export_view(request: HttpRequest, slug: str, fmt: str) -> HttpResponseBase:
    """The records of a data page's view (its filters, search and run) as a file, in key order."""
    dataset = console_dataset(request, slug)
    assert dataset.current_schema is not None  # console_dataset answers 404 for a dataset without a schema
    export = EXPORT_FORMATS.get(fmt)
    if export is None:
        raise Http404(f"No export format {fmt!r}.")
    spec = schema_spec(dataset.current_schema)
    query = Query([(k, v) for k, values in request.GET.lists() for v in values])
    try:
        run = _run_of(dataset, query.get("_run"))
        selection = RecordSelection(
            tuple(data_filters(query.pairs)), query.get("_search").strip(), run.pk if run is not None else None
        )
        records_selected(dataset, spec, selection)  # a bad filter is a message now, not a broken download
    except ValidationError as exc:
        errors = "; ".join(f"{name}: {', '.join(messages)}" for name, messages in exc.message_dict.items())
        return HttpResponseBadRequest(errors, content_type="text/plain; charset=utf-8")
    chunks: Iterator[Any] = export.records(dataset, selection)  # str, or bytes for a binary format
    if not export.binary:
        chunks = (chunk.encode("utf-8") for chunk in chunks)
    response = StreamingHttpResponse(chunks, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{dataset.slug}.{export.extension}"'
    return response
