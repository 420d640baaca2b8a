"""``/api/v1/sources/``: HTTP sources of the datasets you can see; pull one now or preview a pull."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from ingestion.http.guard import FetchError
from ingestion.models import DatasetRole, Source
from ingestion.selectors import datasets_visible_to
from ingestion.services.sources import source_create, source_delete, source_update
from processing.models import Run, RunTrigger
from processing.services.previews import source_preview
from processing.services.sources import SourceBusy, source_pull

from ..errors import Conflict, UnprocessableContent
from ..pagination import AscendingIdPage
from ..permissions import dataset_for, require_role
from ..serializers.runs import RunDetailSerializer
from ..serializers.sources import PullPreviewSerializer, SourceSerializer
from ..throttling import UploadThrottle, UserThrottle
from .base import StrictQueryMixin


@extend_schema_view(
    list=extend_schema(
        summary="Sources of the datasets you have a grant on",
        parameters=[
            OpenApiParameter(
                "dataset", str, description="Only this dataset's sources (404 when you have no grant on it)."
            )
        ],
    ),
    retrieve=extend_schema(summary="One source (viewer); its secret is never shown"),
    create=extend_schema(summary="Create a source for a dataset (manager)"),
    partial_update=extend_schema(summary="Change a source (manager); omit `secret` to keep it"),
    update=extend_schema(summary="Replace a source's configuration (manager)"),
    destroy=extend_schema(summary="Delete a source and its schedule (manager); its runs and records stay"),
)
@extend_schema(tags=["sources"])
class SourceViewSet(StrictQueryMixin, viewsets.ModelViewSet):
    serializer_class = SourceSerializer
    pagination_class = AscendingIdPage
    lookup_value_regex = "[0-9]{1,18}"
    filter_backends: list[Any] = []
    query_params_allowed = {"list": ("cursor", "page_size", "dataset"), "pull": ("dry_run",)}

    def get_queryset(self) -> Any:
        queryset = Source.objects.filter(dataset__in=datasets_visible_to(self.request.user)).select_related("dataset")
        slug = self.request.query_params.get("dataset") if self.action == "list" else None
        if slug:
            # The 404 rule holds in filters too: a dataset you cannot see is no dataset, not an empty list.
            queryset = queryset.filter(dataset=dataset_for(self.request.user, slug))
        return queryset.order_by("id")

    def get_throttles(self) -> list[Any]:
        if self.action == "pull":
            return [UserThrottle(), UploadThrottle()]
        return super().get_throttles()

    def _respond(self, source: Source, code: int = status.HTTP_200_OK) -> Response:
        source = self.get_queryset().get(pk=source.pk)
        data = SourceSerializer(source, context=self.get_serializer_context()).data
        headers = {"Location": data["url"]} if code == status.HTTP_201_CREATED else None
        return Response(data, status=code, headers=headers)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SourceSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        dataset = dataset_for(request.user, serializer.validated_data["dataset"]["slug"], DatasetRole.MANAGER)
        data, secret = serializer.service_data()
        try:
            source = source_create(dataset=dataset, data=data, secret=secret, user=request.user)
        except DjangoValidationError as exc:
            raise serializer.service_error(exc) from None
        return self._respond(source, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        source = self.get_object()
        require_role(request.user, source.dataset, DatasetRole.MANAGER)
        partial = kwargs.pop("partial", False)
        serializer = SourceSerializer(source, data=request.data, partial=partial, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        moved_to = serializer.validated_data.get("dataset", {}).get("slug", source.dataset.slug)
        if moved_to != source.dataset.slug:
            raise ValidationError({"dataset": ["A source cannot move to another dataset; create a new source."]})
        data, secret = serializer.service_data()
        try:
            source = source_update(source=source, data=data, secret=secret, user=request.user)
        except DjangoValidationError as exc:
            raise serializer.service_error(exc) from None
        return self._respond(source)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        source = self.get_object()
        require_role(request.user, source.dataset, DatasetRole.MANAGER)
        source_delete(source=source, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Pull the source now (ingester)",
        description=(
            "Queues a run that fetches every page and processes the records: **202** with the run and its URL in "
            "`Location`. With `?dry_run=true` the pull happens now and the answer (200) says what loading it would "
            "do; nothing is kept and the watermark does not move."
        ),
        request=None,
        parameters=[OpenApiParameter("dry_run", bool, description="Preview the pull without keeping anything.")],
        responses={
            202: RunDetailSerializer,
            200: OpenApiResponse(PullPreviewSerializer, description="The dry-run preview."),
            409: OpenApiResponse(description="A pull of this source is already queued or running."),
            422: OpenApiResponse(description="The dry-run pull failed (the message says why)."),
        },
    )
    @action(detail=True, methods=["post"])
    def pull(self, request: Request, pk: str) -> Response:
        source = self.get_object()
        require_role(request.user, source.dataset, DatasetRole.INGESTER)
        dry_run = request.query_params.get("dry_run", "false").lower()
        if dry_run not in ("true", "false", "1", "0"):
            raise ValidationError({"dry_run": ["must be true or false"]})
        if dry_run in ("true", "1"):
            try:
                preview = source_preview(source=source)
            except FetchError as exc:
                raise UnprocessableContent(f"pulling {source.name} failed: {exc}") from None
            body = {"pull": preview.pull, "preview": dataclasses.asdict(preview.preview)}
            return Response(PullPreviewSerializer(body).data)
        try:
            run = source_pull(source=source, user=request.user, trigger=RunTrigger.API)
        except SourceBusy as exc:
            raise Conflict(exc.messages[0]) from None
        run = Run.objects.select_related("dataset", "raw_file", "started_by", "source").get(pk=run.pk)
        data = RunDetailSerializer(run, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    def get_object(self) -> Source:
        try:
            return super().get_object()
        except NotFound:
            raise NotFound("No such source.") from None
