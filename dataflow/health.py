"""DataFlow's own health checks, as django-health-check (4.x) plugins.

Wired in ``dataflow/urls.py``: ``/health/`` runs them all, ``/health/live/``
only answers that the process is up (it touches no database).
"""

from __future__ import annotations

import dataclasses
import datetime
import shutil

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

REAPER_FUNC = "processing.tasks.reap_stale_runs"


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration on disk is applied to the database."""

    alias: str = dataclasses.field(default=DEFAULT_DB_ALIAS, repr=False)

    async def run(self) -> None:
        # thread_sensitive: use the request thread's database connection.
        await sync_to_async(self._check, thread_sensitive=True)()

    def _check(self) -> None:
        connection = connections[self.alias]
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
            raise ServiceUnavailable(f"{len(plan)} migration(s) not applied ({names}); run manage.py migrate")


@dataclasses.dataclass
class DataDirectory(HealthCheck):
    """The data storage takes writes (checked by Storage) and the disk has room left."""

    min_free_mb: int = dataclasses.field(default_factory=lambda: settings.HEALTH_MIN_FREE_MB, repr=False)

    def run(self) -> None:
        path = settings.DATA_DIR
        if not path.exists():
            raise ServiceUnavailable("DATA_DIR does not exist")
        free_mb = shutil.disk_usage(path).free // (1024 * 1024)
        if free_mb < self.min_free_mb:
            raise ServiceUnavailable(f"only {free_mb} MB free in DATA_DIR (minimum {self.min_free_mb} MB)")


@dataclasses.dataclass
class WorkerCluster(HealthCheck):
    """A django-q2 cluster is alive and the queue is moving.

    Alive means the reaper, scheduled every minute, ran recently; moving
    means the oldest queued run has not waited too long.
    """

    max_silence: datetime.timedelta = dataclasses.field(
        default_factory=lambda: datetime.timedelta(seconds=settings.HEALTH_WORKER_MAX_SILENCE), repr=False
    )
    max_queue_age: datetime.timedelta = dataclasses.field(
        default_factory=lambda: datetime.timedelta(seconds=settings.HEALTH_MAX_QUEUE_AGE), repr=False
    )

    async def run(self) -> None:
        await sync_to_async(self._check, thread_sensitive=True)()

    def _check(self) -> None:
        from django_q.models import Success

        from processing.models import Run, RunStatus

        now = timezone.now()
        last = Success.objects.filter(func=REAPER_FUNC).order_by("-stopped").values_list("stopped", flat=True).first()
        if last is None or now - last > self.max_silence:
            seen = f"last seen {int((now - last).total_seconds())}s ago" if last else "never seen"
            raise ServiceUnavailable(f"no background worker ({seen}); start: python manage.py qcluster")
        oldest = (
            Run.objects.filter(status=RunStatus.QUEUED)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if oldest is not None and now - oldest > self.max_queue_age:
            raise ServiceWarning(f"the oldest queued run has waited {int((now - oldest).total_seconds())}s")


def liveness(request: HttpRequest) -> JsonResponse:
    """The process answers; no database, no cache (for container liveness probes)."""
    return JsonResponse({"status": "ok"})
