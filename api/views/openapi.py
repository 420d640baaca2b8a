"""``/api/v1/datasets/{slug}/openapi.json``: the OpenAPI document of one dataset's records."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.selectors import schema_spec

from ..dataset_openapi import dataset_openapi
from ..errors import Conflict
from ..permissions import dataset_for
from .base import StrictQueryMixin


class DatasetOpenAPIView(StrictQueryMixin, APIView):
    @extend_schema(
        tags=["datasets"],
        operation_id="datasets_openapi_retrieve",
        summary="OpenAPI document of this dataset's records, with its fields, types and filters (viewer)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, slug: str) -> Response:
        dataset = dataset_for(request.user, slug)
        version = dataset.current_schema
        if version is None:
            raise Conflict("This dataset has no schema yet.")
        return Response(dataset_openapi(dataset, schema_spec(version), version.number, request))
