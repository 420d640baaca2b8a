"""The API's routes, under ``/api/v1/`` (namespace ``api``)."""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .views.audit import AuditEventViewSet
from .views.auth import LogoutView, TokenObtainView, TokenRefreshView, TokenVerifyView
from .views.datasets import SLUG_REGEX, DatasetViewSet
from .views.exports import ExportView
from .views.grants import GrantViewSet
from .views.openapi import DatasetOpenAPIView
from .views.push import IngestView
from .views.quality import RunChecksView, RunProfileView
from .views.records import RecordViewSet
from .views.runs import RunViewSet
from .views.sources import SourceViewSet
from .views.uploads import UploadView

app_name = "api"

router = SimpleRouter()
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("runs", RunViewSet, basename="run")
router.register("audit", AuditEventViewSet, basename="audit")
router.register("sources", SourceViewSet, basename="source")

DATASET = f"datasets/(?P<slug>{SLUG_REGEX})"

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/token/verify/", TokenVerifyView.as_view(), name="token-verify"),
    path("auth/logout/", LogoutView.as_view(), name="logout"),
    re_path(rf"^{DATASET}/records/$", RecordViewSet.as_view({"get": "page"}), name="record-list"),
    re_path(rf"^{DATASET}/records/(?P<key>.+)/$", RecordViewSet.as_view({"get": "retrieve"}), name="record-detail"),
    re_path(rf"^{DATASET}/uploads/$", UploadView.as_view(), name="dataset-uploads"),
    re_path(rf"^{DATASET}/ingest/$", IngestView.as_view(), name="dataset-ingest"),
    re_path(rf"^{DATASET}/export/$", ExportView.as_view(), name="dataset-export"),
    re_path(rf"^{DATASET}/openapi\.json$", DatasetOpenAPIView.as_view(), name="dataset-openapi"),
    re_path(rf"^{DATASET}/grants/$", GrantViewSet.as_view({"get": "list", "post": "create"}), name="grant-list"),
    re_path(
        rf"^{DATASET}/grants/(?P<pk>[0-9]{{1,18}})/$",
        GrantViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="grant-detail",
    ),
    re_path(r"^runs/(?P<pk>[0-9]{1,18})/profile/$", RunProfileView.as_view(), name="run-profile"),
    re_path(r"^runs/(?P<pk>[0-9]{1,18})/checks/$", RunChecksView.as_view(), name="run-checks"),
    *router.urls,
]
