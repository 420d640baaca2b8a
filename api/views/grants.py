"""``/api/v1/datasets/{slug}/grants/``: who has which role on a dataset (managers only)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from ingestion.selectors import dataset_grants_list
from ingestion.services.grants import DatasetConflict, dataset_grant_delete, dataset_grant_set

from ..errors import Conflict
from ..pagination import AscendingIdPage
from ..permissions import dataset_for
from ..serializers.grants import GrantCreateSerializer, GrantRoleSerializer, GrantSerializer
from .base import StrictQueryMixin

LAST_MANAGER = OpenApiResponse(description="It would leave the dataset without a manager grant.")


@extend_schema_view(
    list=extend_schema(summary="The dataset's grants (manager)"),
    retrieve=extend_schema(summary="One grant (manager)"),
    create=extend_schema(
        summary="Grant a role to a user or a group (manager); granting again replaces the role",
        request=GrantCreateSerializer,
        responses={201: GrantSerializer, 200: GrantSerializer, 409: LAST_MANAGER},
    ),
    partial_update=extend_schema(
        summary="Change a grant's role (manager)",
        request=GrantRoleSerializer,
        responses={200: GrantSerializer, 409: LAST_MANAGER},
    ),
    destroy=extend_schema(summary="Remove a grant (manager)", responses={204: None, 409: LAST_MANAGER}),
)
@extend_schema(tags=["grants"])
class GrantViewSet(StrictQueryMixin, viewsets.GenericViewSet):
    serializer_class = GrantSerializer
    pagination_class = AscendingIdPage
    filter_backends: list[Any] = []
    lookup_value_regex = "[0-9]{1,18}"
    query_params_allowed = {"list": ("cursor", "page_size")}

    def _dataset(self) -> Dataset:
        return dataset_for(self.request.user, self.kwargs["slug"], DatasetRole.MANAGER)

    def _grant(self, dataset: Dataset, pk: str) -> DatasetGrant:
        grant = dataset_grants_list(dataset).filter(pk=int(pk)).first()
        if grant is None:
            raise NotFound(f"No grant {pk} on dataset {dataset.slug!r}.")
        return grant

    def _context(self, dataset: Dataset) -> dict[str, Any]:
        return {**self.get_serializer_context(), "dataset": dataset}

    def list(self, request: Request, slug: str) -> Response:
        dataset = self._dataset()
        page = self.paginate_queryset(dataset_grants_list(dataset))
        return self.get_paginated_response(GrantSerializer(page, many=True, context=self._context(dataset)).data)

    def retrieve(self, request: Request, slug: str, pk: str) -> Response:
        dataset = self._dataset()
        return Response(GrantSerializer(self._grant(dataset, pk), context=self._context(dataset)).data)

    def create(self, request: Request, slug: str) -> Response:
        dataset = self._dataset()
        serializer = GrantCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            grant, created = dataset_grant_set(dataset=dataset, actor=request.user, **serializer.validated_data)
        except DatasetConflict as exc:
            raise Conflict(exc.messages[0]) from None
        data = GrantSerializer(grant, context=self._context(dataset)).data
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(data, status=code, headers={"Location": data["url"]})

    def partial_update(self, request: Request, slug: str, pk: str) -> Response:
        dataset = self._dataset()
        grant = self._grant(dataset, pk)
        serializer = GrantRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        who = {"user": grant.user} if grant.user_id else {"group": grant.group}
        try:
            grant, _ = dataset_grant_set(
                dataset=dataset, role=serializer.validated_data["role"], actor=request.user, **who
            )
        except DatasetConflict as exc:
            raise Conflict(exc.messages[0]) from None
        return Response(GrantSerializer(grant, context=self._context(dataset)).data)

    def destroy(self, request: Request, slug: str, pk: str) -> Response:
        dataset = self._dataset()
        try:
            dataset_grant_delete(grant=self._grant(dataset, pk), actor=request.user)
        except DatasetConflict as exc:
            raise Conflict(exc.messages[0]) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
