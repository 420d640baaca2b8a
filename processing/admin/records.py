"""Records in the console: a dataset's records as a table (one column per field), and one record with its lineage."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from ingestion.models import Dataset
from ingestion.selectors import restrict, schema_spec

from ..record_queries import record_get, records_list, run_of_dataset
from .common import pretty_json

PAGE = 100


def _dataset(request: HttpRequest, slug: str) -> Dataset:
    if not request.user.has_perm("processing.view_run"):
        raise PermissionDenied
    # Only a dataset the user holds a grant on, as in the API: any other is not found.
    datasets = restrict(Dataset.objects.select_related("current_schema"), request.user, via=None)
    dataset = get_object_or_404(datasets, slug=slug)
    if dataset.current_schema is None:
        raise Http404(f"Dataset {slug!r} has no schema yet.")
    return dataset


def records_url(dataset_slug: str, **query: Any) -> str:
    url = reverse("admin:processing_records", args=[dataset_slug])
    return url + ("?" + urlencode(query) if query else "")


def records_view(request: HttpRequest, slug: str) -> HttpResponse:
    """A dataset's records in key order, 100 a page, optionally those a run last wrote or one key."""
    dataset = _dataset(request, slug)
    assert dataset.current_schema is not None  # _dataset answers 404 for a dataset without a schema
    spec = schema_spec(dataset.current_schema)
    run = None
    if (raw_run := request.GET.get("run", "")).isdigit():
        run = run_of_dataset(dataset, int(raw_run))
    queryset = records_list(dataset, spec, run=run)
    if key := request.GET.get("q", "").strip():
        queryset = queryset.filter(key=key)
    if after := request.GET.get("after"):
        queryset = queryset.filter(key__gt=after)
    rows = list(queryset[: PAGE + 1])
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    context = {
        **admin.site.each_context(request),
        "title": f"Records of {dataset.name}",
        "dataset": dataset,
        "fields": [f.name for f in spec.fields],
        "rows": [
            (r, [r.data[f.name] for f in spec.fields], reverse("admin:processing_record", args=[slug, r.key]))
            for r in rows
        ],
        "run": run,
        "q": key,
        "next_after": rows[-1].key if more else None,
    }
    return TemplateResponse(request, "admin/processing/records/list.html", context)


def record_view(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    """One record: its values and where they came from."""
    dataset = _dataset(request, slug)
    assert dataset.current_schema is not None  # _dataset answers 404 for a dataset without a schema
    record = record_get(dataset, schema_spec(dataset.current_schema), key)
    if record is None:
        raise Http404(f"No record {key!r} in dataset {slug!r}.")
    context = {
        **admin.site.each_context(request),
        "title": f"Record {key}",
        "dataset": dataset,
        "record": record,
        "data": pretty_json(record.data),
        "last_file": record.last_run.raw_file,  # type: ignore[attr-defined]  # set by record_get
    }
    return TemplateResponse(request, "admin/processing/records/detail.html", context)
