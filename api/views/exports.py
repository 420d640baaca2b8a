"""``/api/v1/datasets/{slug}/export/``: all records of a dataset, streamed in any registered export format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from ingestion.selectors import schema_spec
from processing.exports import DEFAULT_FORMAT, EXPORT_FORMATS, formats_text
from processing.record_queries import RecordSelection, records_selected

from ..permissions import dataset_for
from .base import StrictQueryMixin


class StreamedNegotiation(DefaultContentNegotiation):
    """The export's media type comes from ``?format=``; ``Accept`` only picks how errors are written."""

    def select_renderer(self, request: Request, renderers: Iterable[Any], format_suffix: str | None = None) -> Any:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class ExportView(StrictQueryMixin, APIView):
    content_negotiation_class = StreamedNegotiation
    # Every parameter but ``format`` is a record filter, checked against the schema as the records list checks it.
    query_params_free = ("get",)

    @extend_schema(
        tags=["records"],
        summary="Export the records of a dataset, all or those matching filters, streamed (viewer)",
        description=" ".join([*(f.description for f in EXPORT_FORMATS.values()), "Records come in key order."]),
        parameters=[
            OpenApiParameter("format", str, enum=list(EXPORT_FORMATS), description=f"Default {DEFAULT_FORMAT}."),
            OpenApiParameter(
                "filters",
                OpenApiTypes.OBJECT,
                style="form",
                explode=True,
                description=(
                    "The records list's field filters, spelled and checked the same way (`field=v`, `field__gte=v`, "
                    "`field__lte=v`, `field__in=a,b`, `field__contains=v`, `field__isnull=true`): only the records "
                    "they match are exported. A bad filter is a 400 naming the parameter, before anything is sent."
                ),
            ),
        ],
        responses={
            (200, f.media_type): OpenApiResponse(f.openapi, description=f.openapi_description)
            for f in EXPORT_FORMATS.values()
        },
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        dataset = dataset_for(request.user, slug)
        name = request.query_params.get("format", DEFAULT_FORMAT)
        fmt = EXPORT_FORMATS.get(name)
        if fmt is None:
            raise ValidationError({"format": [f"unknown format {name!r}; use {formats_text(list(EXPORT_FORMATS))}"]})
        if dataset.current_schema_id is None:
            raise ValidationError({"format": ["this dataset has no schema yet"]})
        assert dataset.current_schema is not None  # refused just above
        filters = tuple((k, v) for k, values in request.query_params.lists() if k != "format" for v in values)
        selection = RecordSelection(filters)
        # A bad filter is a 400 now (ValidationError), not an error in the middle of a streamed body.
        records_selected(dataset, schema_spec(dataset.current_schema), selection)
        chunks: Iterator[Any] = fmt.records(dataset, selection)  # str, or bytes for a binary format
        if not fmt.binary:
            chunks = (chunk.encode("utf-8") for chunk in chunks)
        response = StreamingHttpResponse(chunks, content_type=fmt.content_type)
        response["Content-Disposition"] = f'attachment; filename="{dataset.slug}.{fmt.extension}"'
        return response
