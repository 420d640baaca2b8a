"""``/api/v1/datasets/{slug}/records/``: keyset pages of records with typed filters, and one record by key."""

from __future__ import annotations

import re
from typing import Any, cast

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from ingestion.models import Dataset
from ingestion.schema import SchemaSpec
from ingestion.selectors import schema_spec
from processing.models import Run
from processing.record_queries import record_get, record_ordering_parse, records_list, records_rows, run_of_dataset

from ..pagination import CURSOR_PARAM, MAX_PAGE_SIZE, PAGE_SIZE_PARAM, PAGE_SIZE_SCHEMA, RecordCursor
from ..permissions import dataset_for
from ..serializers.records import RecordDetailSerializer, RecordPageWriter, RecordSerializer
from .base import StrictQueryMixin

RESERVED_PARAMS = (CURSOR_PARAM, PAGE_SIZE_PARAM, "ordering", "run")
_RUN_ID = re.compile(r"^[0-9]{1,18}$")

RECORD_LIST_PARAMETERS = [
    OpenApiParameter(CURSOR_PARAM, str, description="Opaque position from a `next` or `previous` link."),
    OpenApiParameter(PAGE_SIZE_PARAM, PAGE_SIZE_SCHEMA, description=f"Records per page, 1 to {MAX_PAGE_SIZE}."),
    OpenApiParameter(
        "ordering",
        str,
        description="`key` (default), `updated_at` or a field name; prefix `-` for descending. Ties go by key.",
    ),
    OpenApiParameter(
        "run",
        {"type": "integer", "minimum": 1, "maximum": 10**18 - 1},
        description="Only records whose values were last written by this run (404 for a run of another dataset).",
    ),
    OpenApiParameter(
        "filters",
        OpenApiTypes.OBJECT,
        style="form",
        explode=True,
        description=(
            "Field filters, typed by the dataset's schema: `field=v` (or `field__eq=v`), `field__gte=v`, "
            "`field__lte=v`, `field__in=a,b` and, for text fields, `field__contains=v`. Unknown names and "
            "values that do not parse as the field's type are a 400 naming the parameter. The dataset's "
            "`openapi.json` lists its own filters."
        ),
    ),
]

RecordPageSerializer = inline_serializer(
    "RecordPage",
    fields={
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": RecordSerializer(many=True),
    },
)


def _spec(dataset: Dataset) -> SchemaSpec | None:
    return schema_spec(dataset.current_schema) if dataset.current_schema is not None else None


@extend_schema(tags=["records"])
class RecordViewSet(StrictQueryMixin, viewsets.GenericViewSet):
    serializer_class = RecordSerializer
    pagination_class = None
    filter_backends: list[Any] = []
    # Not "list": the answer is one page object, not a list for drf-spectacular to wrap.
    query_params_free = ("page",)

    @extend_schema(
        operation_id="datasets_records_list",
        summary="Records of a dataset, a keyset page at a time (viewer)",
        parameters=RECORD_LIST_PARAMETERS,
        responses={200: RecordPageSerializer},
    )
    def page(self, request: Request, slug: str) -> Response | HttpResponse:
        dataset = dataset_for(request.user, slug)
        spec = _spec(dataset)
        if spec is None:
            return Response({"next": None, "previous": None, "results": []})
        ordering = record_ordering_parse(spec, request.query_params.get("ordering"))
        run = self._run_filter(request, dataset)
        filters = [(k, v) for k, values in request.query_params.lists() if k not in RESERVED_PARAMS for v in values]
        paginator = RecordCursor(request, ordering)
        rows = paginator.paginate(
            lambda backwards: records_rows(
                records_list(dataset, spec, filters=filters, ordering=ordering, run=run, backwards=backwards), spec
            )
        )
        if isinstance(request.accepted_renderer, JSONRenderer):
            # The common case, written directly: the same JSON as below, a fraction of the work.
            body = RecordPageWriter(request, dataset.slug).page(
                rows, next_url=paginator.next, previous_url=paginator.previous
            )
            return HttpResponse(body, content_type="application/json")
        context = {**self.get_serializer_context(), "dataset": dataset}
        # many=True makes a ListSerializer, whose data is a list (RecordSerializer's own "data" is a field).
        records = cast(list[Any], RecordSerializer(rows, many=True, context=context).data)
        return Response(paginator.response_data(records))

    @staticmethod
    def _run_filter(request: Request, dataset: Dataset) -> Run | None:
        raw = request.query_params.get("run")
        if raw is None:
            return None
        if not _RUN_ID.match(raw):
            raise ValidationError({"run": ["must be a run id (a whole number)"]})
        run = run_of_dataset(dataset, int(raw))
        if run is None:
            raise NotFound(f"No run {raw} in dataset {dataset.slug!r}.")
        return run

    @extend_schema(summary="One record by natural key, with its lineage (viewer)", responses=RecordDetailSerializer)
    def retrieve(self, request: Request, slug: str, key: str) -> Response:
        dataset = dataset_for(request.user, slug)
        spec = _spec(dataset)
        record = record_get(dataset, spec, key) if spec is not None else None
        if record is None:
            raise NotFound(f"No record with key {key!r} in dataset {dataset.slug!r}.")
        context = {**self.get_serializer_context(), "dataset": dataset}
        return Response(RecordDetailSerializer(record, context=context).data)
