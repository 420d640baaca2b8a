"""``/api/v1/datasets/``: list, create, retrieve, update and delete datasets by slug."""

from __future__ import annotations

import dataclasses
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from ingestion.models import Dataset, DatasetRole
from ingestion.selectors import dataset_roles_for, datasets_visible_to
from ingestion.services.datasets import dataset_apply, dataset_apply_preview, dataset_create, dataset_delete
from ingestion.services.grants import DatasetConflict

from ..errors import Conflict
from ..pagination import SlugPage
from ..permissions import CanCreateDatasets, dataset_for
from ..serializers.datasets import DatasetSerializer
from ..serializers.schema_changes import SchemaChangePreviewSerializer, SchemaChangeSerializer
from .base import StrictQueryMixin

SLUG_REGEX = "[-a-zA-Z0-9_]{1,64}"
DRY_RUN = OpenApiParameter(
    "dry_run",
    {"type": "string", "enum": ["true", "false"]},
    description="`true`: check the stored records against the new schema and answer what applying it would do.",
)


class ChangedDatasetSerializer(DatasetSerializer):
    schema_change = SchemaChangeSerializer(
        required=False, help_text="Present when a new schema version was made: what it did to the stored records."
    )


DATASET_CHANGE = PolymorphicProxySerializer(
    component_name="DatasetChange",
    serializers=[ChangedDatasetSerializer, SchemaChangePreviewSerializer],
    resource_type_field_name=None,
)


@extend_schema_view(
    list=extend_schema(summary="List the datasets you have a grant on"),
    retrieve=extend_schema(summary="A dataset and its schema (viewer)"),
    create=extend_schema(
        summary="Create a dataset from a schema file",
        description="Needs the `ingestion.add_dataset` permission; you become the dataset's manager.",
        responses={201: DatasetSerializer, 409: OpenApiResponse(description="The slug is taken.")},
    ),
    update=extend_schema(
        summary="Replace the schema (manager)",
        description=(
            "Changing the fields or the key creates a new schema version; the slug cannot change. The stored "
            "records are checked against it: those that no longer pass are quarantined as rejected rows of a "
            "`schema_change` run (`schema_change` in the answer says how many, and which run). "
            "`?dry_run=true` answers what would happen and changes nothing."
        ),
        parameters=[DRY_RUN],
        responses={200: DATASET_CHANGE},
    ),
    partial_update=extend_schema(
        summary="Change some top-level keys of the schema (manager)",
        description="As the full replacement, `?dry_run=true` included.",
        parameters=[DRY_RUN],
        responses={200: DATASET_CHANGE},
    ),
    destroy=extend_schema(
        summary="Delete a dataset that has never received a file (manager)",
        responses={204: None, 409: OpenApiResponse(description="The dataset has received files.")},
    ),
)
@extend_schema(tags=["datasets"])
class DatasetViewSet(StrictQueryMixin, viewsets.GenericViewSet):
    serializer_class = DatasetSerializer
    pagination_class = SlugPage
    lookup_field = "slug"
    lookup_value_regex = SLUG_REGEX
    filter_backends: list[Any] = []
    query_params_allowed = {"list": ("cursor", "page_size"), "update": ("dry_run",), "partial_update": ("dry_run",)}

    def get_permissions(self) -> list[Any]:
        permissions = list(super().get_permissions())
        if self.action == "create":
            permissions.append(CanCreateDatasets())
        return permissions

    def get_queryset(self) -> Any:
        return datasets_visible_to(self.request.user).select_related("current_schema")

    def _respond(self, datasets: list[Dataset], *, many: bool = False, **kwargs: Any) -> Any:
        roles = dataset_roles_for(self.request.user, datasets)
        context = {**self.get_serializer_context(), "roles": roles}
        data = DatasetSerializer(datasets if many else datasets[0], many=many, context=context).data
        return data if many else Response(data, **kwargs)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # pagination_class is set: every list is paged
        return self.get_paginated_response(self._respond(list(page), many=True))

    def retrieve(self, request: Request, slug: str) -> Response:
        return self._respond([dataset_for(request.user, slug)])

    def create(self, request: Request) -> Response:
        serializer = DatasetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = dataset_create(spec=serializer.validated_data, user=request.user)
        except DatasetConflict as exc:
            raise Conflict(exc.messages[0]) from None
        response = self._respond([result.dataset], status=status.HTTP_201_CREATED)
        response["Location"] = response.data["url"]
        return response

    def _apply(self, request: Request, slug: str, document: Any) -> Response:
        dataset = dataset_for(request.user, slug, DatasetRole.MANAGER)
        if isinstance(document, dict):
            if "slug" not in document:
                document = {**document, "slug": dataset.slug}
            elif document["slug"] != dataset.slug:
                raise ValidationError({"slug": [f"cannot be changed (this dataset is {dataset.slug!r})"]})
        serializer = DatasetSerializer(data=document)
        serializer.is_valid(raise_exception=True)
        dry_run = request.query_params.get("dry_run", "false")
        if dry_run not in ("true", "false"):
            raise ValidationError({"dry_run": ["must be true or false"]})
        if dry_run == "true":
            preview = dataset_apply_preview(spec=serializer.validated_data)
            return Response(SchemaChangePreviewSerializer({**dataclasses.asdict(preview), "dry_run": True}).data)
        result = dataset_apply(spec=serializer.validated_data, user=request.user)
        response = self._respond([result.dataset])
        if result.records is not None:
            response.data["schema_change"] = SchemaChangeSerializer(dataclasses.asdict(result.records)).data
        return response

    def update(self, request: Request, slug: str) -> Response:
        return self._apply(request, slug, request.data)

    def partial_update(self, request: Request, slug: str) -> Response:
        dataset = dataset_for(request.user, slug, DatasetRole.MANAGER)
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object with the keys to change."]})
        current = DatasetSerializer(dataset, context=self.get_serializer_context()).data
        document = {k: v for k, v in current.items() if k not in DatasetSerializer.READ_ONLY_KEYS}
        return self._apply(request, slug, {**document, **request.data})

    def destroy(self, request: Request, slug: str) -> Response:
        dataset = dataset_for(request.user, slug, DatasetRole.MANAGER)
        try:
            dataset_delete(dataset=dataset, user=request.user)
        except DatasetConflict as exc:
            raise Conflict(exc.messages[0]) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
