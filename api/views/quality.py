"""``/api/v1/runs/{id}/profile/`` and ``/api/v1/runs/{id}/checks/``: a run's data quality (viewer)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.selectors import restrict
from processing.models import Run
from processing.quality.selectors import run_anomalies, run_checks, run_profile

from .base import StrictQueryMixin


def _run_for(request: Request, pk: str) -> Run:
    """The run, if the user may see its dataset (as ``GET /runs/{id}/``); otherwise 404, as for no such run."""
    run = restrict(Run.objects.all(), request.user).filter(pk=pk).first()
    if run is None:
        raise NotFound("No such run.")
    return run


class RunProfileView(StrictQueryMixin, APIView):
    @extend_schema(
        tags=["runs"],
        operation_id="runs_profile_retrieve",
        summary="The profile of a run's valid rows: per field counts, nulls, distinct values, statistics (viewer)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(run_profile(_run_for(request, pk)))


class RunChecksView(StrictQueryMixin, APIView):
    @extend_schema(
        tags=["runs"],
        operation_id="runs_checks_retrieve",
        summary="The run's declared data-quality check results and its anomalies against recent runs (viewer)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, pk: str) -> Response:
        run = _run_for(request, pk)
        return Response({"run": run.pk, "checks": run_checks(run), "anomalies": run_anomalies(run)})
