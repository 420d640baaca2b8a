"""``/api/v1/datasets/{slug}/ingest/``: push rows as JSON; small batches answer row by row."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.models import DatasetAction
from ingestion.selectors import action_role
from ingestion.storage import storage_errors
from processing.models import Run
from processing.services.push import PUSH_MEDIA_TYPES, rows_push

from ..errors import PayloadTooLarge
from ..parsers import (
    JSONLinesStreamParser,
    JSONStreamParser,
    NDJSONAltStreamParser,
    NDJSONStreamParser,
    body_stream,
)
from ..permissions import dataset_for
from ..serializers.runs import RunDetailSerializer
from ..serializers.sources import PushRowSerializer
from ..throttling import UploadThrottle, UserThrottle
from ..uploads import announced_length
from .base import StrictQueryMixin


class IngestView(StrictQueryMixin, APIView):
    parser_classes = [JSONStreamParser, NDJSONStreamParser, NDJSONAltStreamParser, JSONLinesStreamParser]
    throttle_classes = [UserThrottle, UploadThrottle]

    @extend_schema(
        tags=["uploads"],
        summary="Push rows (ingester)",
        description=(
            "Send a JSON array of row objects (`application/json`) or one object per line "
            "(`application/x-ndjson`). Rows go through the same pipeline as files. Batches of up to "
            "`PUSH_SYNC_MAX_ROWS` rows are processed now: **200** with the finished run and one result per row "
            "(`accepted` or `rejected` with its errors). Larger batches are queued: **202** with the run."
        ),
        request={"application/json": OpenApiTypes.ANY, "application/x-ndjson": OpenApiTypes.STR},
        responses={
            200: inline_serializer(
                "PushResult",
                {
                    "run": RunDetailSerializer(),
                    "rows": serializers.IntegerField(),
                    "results": PushRowSerializer(many=True),
                },
            ),
            202: inline_serializer("PushQueued", {"run": RunDetailSerializer(), "rows": serializers.IntegerField()}),
            413: OpenApiResponse(description="The body is larger than PUSH_MAX_BYTES."),
            415: OpenApiResponse(description="Not JSON or NDJSON."),
            503: OpenApiResponse(description="The data storage is read-only or not writable; nothing was kept."),
            507: OpenApiResponse(description="The data storage is full; nothing was kept."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        dataset = dataset_for(request.user, slug, action_role(DatasetAction.UPLOAD))
        if announced_length(request) > settings.PUSH_MAX_BYTES:
            raise PayloadTooLarge(f"The request body is larger than the limit of {settings.PUSH_MAX_BYTES} bytes.")
        media_type = (request.content_type or "").split(";", 1)[0].strip().lower()
        if media_type and media_type not in PUSH_MEDIA_TYPES:
            # Before reading the body: an empty body of the wrong type is a 415 too, not "empty".
            raise UnsupportedMediaType(
                media_type,
                detail=f"Unsupported media type {media_type[:60]!r} for a push: send application/json "
                "(an array of row objects) or application/x-ndjson (one object per line; "
                "application/ndjson and application/jsonl too).",
            )
        body = body_stream(
            request.data,
            hint="send a JSON array of row objects (application/json) or one object per line (application/x-ndjson)",
        )
        with storage_errors():  # 507 full / 503 read-only; the temporary files and any partial file are gone
            result = rows_push(dataset=dataset, body=body, content_type=request.content_type, user=request.user)
        run = Run.objects.select_related("dataset", "raw_file", "started_by", "source").get(pk=result.run.pk)
        data: dict[str, Any] = {"run": RunDetailSerializer(run, context={"request": request}).data, "rows": result.rows}
        if result.queued:
            return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["run"]["url"]})
        data["results"] = PushRowSerializer(result.results, many=True).data
        return Response(data)
