"""``/api/v1/runs/``: runs of the datasets you can see, their rejected rows, retry and cancel."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ingestion.models import DatasetAction
from ingestion.selectors import restrict
from processing.models import RejectedRow, Run, RunTrigger
from processing.services.runs import run_cancel, run_retry

from ..errors import Conflict
from ..filters import RunFilter
from ..pagination import AscendingIdPage, CursorPage
from ..permissions import require_action
from ..serializers.runs import RejectedRowSerializer, RunDetailSerializer, RunSerializer
from .base import StrictQueryMixin

PAGE_PARAMS = ("cursor", "page_size")


@extend_schema_view(
    list=extend_schema(summary="Runs of the datasets you have a grant on, newest first"),
    retrieve=extend_schema(summary="One run with its progress and counters (viewer)"),
)
@extend_schema(tags=["runs"])
class RunViewSet(StrictQueryMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    pagination_class = CursorPage
    filter_backends = [DjangoFilterBackend]
    filterset_class = RunFilter
    lookup_value_regex = "[0-9]{1,18}"
    query_params_allowed = {
        "list": (*PAGE_PARAMS, "dataset", "status", "trigger"),
        "rejected_rows": PAGE_PARAMS,
    }

    def get_queryset(self) -> Any:
        return restrict(Run.objects.all(), self.request.user).select_related(
            "dataset", "raw_file", "started_by", "source"
        )

    def get_serializer_class(self) -> Any:
        if self.action == "rejected_rows":
            return RejectedRowSerializer
        return RunDetailSerializer if self.action in ("retrieve", "retry", "cancel") else RunSerializer

    def filter_queryset(self, queryset: Any) -> Any:
        # Only the list takes filters; a detail lookup must not read ?dataset=.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def _run_response(self, run: Run, code: int) -> Response:
        data = RunDetailSerializer(run, context=self.get_serializer_context()).data
        return Response(data, status=code, headers={"Location": data["url"]})

    @extend_schema(
        summary="Retry a failed or cancelled run from its stored file (ingester)",
        request=None,
        responses={202: RunDetailSerializer, 409: OpenApiResponse(description="The run is not failed or cancelled.")},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        require_action(request.user, run.dataset, DatasetAction.RETRY)
        try:
            new = run_retry(run=run, user=request.user, trigger=RunTrigger.API)
        except DjangoValidationError as exc:
            raise Conflict(exc.messages[0]) from None
        return self._run_response(self.get_queryset().get(pk=new.pk), status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Cancel a run (ingester): a queued run at once, a running one at its next chunk",
        request=None,
        responses={200: RunDetailSerializer, 409: OpenApiResponse(description="The run has already ended.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        require_action(request.user, run.dataset, DatasetAction.CANCEL)
        try:
            run = run_cancel(run=run, user=request.user)
        except DjangoValidationError as exc:
            raise Conflict(exc.messages[0]) from None
        return self._run_response(self.get_queryset().get(pk=run.pk), status.HTTP_200_OK)

    @extend_schema(summary="A run's rejected rows, by line (viewer)", responses=RejectedRowSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="rejected-rows", pagination_class=AscendingIdPage)
    def rejected_rows(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        # Rows still in quarantine: discarded rows left it (the console shows them on demand).
        rows = RejectedRow.objects.filter(run=run, discarded_at=None).annotate(schema_number=F("schema__number"))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(RejectedRowSerializer(page, many=True).data)
