"""``/api/v1/datasets/{slug}/export/``: all records of a dataset, streamed in any registered export format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from processing.exports import DEFAULT_FORMAT, EXPORT_FORMATS, formats_text

from ..permissions import dataset_for
from .base import StrictQueryMixin


class StreamedNegotiation(DefaultContentNegotiation):
    """The export's media type comes from ``?format=``; ``Accept`` only picks how errors are written."""

    def select_renderer(self, request: Request, renderers: Iterable[Any], format_suffix: str | None = None) -> Any:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class ExportView(StrictQueryMixin, APIView):
    content_negotiation_class = StreamedNegotiation
    query_params_allowed = {"get": ("format",)}

    @extend_schema(
        tags=["records"],
        summary="Export every record of a dataset, streamed (viewer)",
        description=" ".join([*(f.description for f in EXPORT_FORMATS.values()), "Records come in key order."]),
        parameters=[
            OpenApiParameter("format", str, enum=list(EXPORT_FORMATS), description=f"Default {DEFAULT_FORMAT}.")
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
        chunks: Iterator[Any] = fmt.records(dataset)  # str, or bytes for a binary format
        if not fmt.binary:
            chunks = (chunk.encode("utf-8") for chunk in chunks)
        response = StreamingHttpResponse(chunks, content_type=fmt.content_type)
        response["Content-Disposition"] = f'attachment; filename="{dataset.slug}.{fmt.extension}"'
        return response
