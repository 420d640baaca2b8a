"""Root URLconf."""

from django.conf import settings
from django.contrib import admin
from django.urls import path
from health_check.views import HealthCheckView

from .health import DataDirectory, MigrationsApplied, WorkerCluster, liveness

HEALTH_CHECKS: list = [
    "health_check.checks.Database",
    "health_check.checks.Cache",
    ("health_check.checks.Storage", {"alias": "dataflow"}),
    DataDirectory,
    MigrationsApplied,
    WorkerCluster,
]
if settings.REDIS_URL:
    import redis

    HEALTH_CHECKS.append(
        ("health_check.contrib.redis.Redis", {"client_factory": lambda: redis.Redis.from_url(settings.REDIS_URL)})
    )

urlpatterns = [
    path("health/", HealthCheckView.as_view(checks=HEALTH_CHECKS), name="health"),
    path("health/live/", liveness, name="health-live"),
    path("admin/", admin.site.urls),
]
