"""Root URLconf: health checks, the admin, the REST API and its OpenAPI schema and docs."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from .health import HealthView, liveness
from .metrics import metrics_view

urlpatterns = [
    # The site has no home page of its own: the admin's index is the dashboard.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("health/", HealthView.as_view(), name="health"),
    path("health/live/", liveness, name="health-live"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script from its own URL
    # (``?script``) instead of inline, so the page needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="api_docs/redoc.html"),
        name="api-redoc",
    ),
]

# JSON errors under /api/, Django's pages elsewhere.
handler400 = "api.exceptions.handler400"
handler403 = "api.exceptions.handler403"
handler404 = "api.exceptions.handler404"
handler500 = "api.exceptions.handler500"
