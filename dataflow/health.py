"""DataFlow's own health checks, as django-health-check (4.x) plugins.

Wired in ``dataflow/urls.py``: ``/health/`` (``HealthView``) runs those
``health_checks()`` lists and answers 200 or 503; ``/health/live/`` only
answers that the process is up (it touches no database).
"""

from __future__ import annotations

import dataclasses
import datetime
import shutil
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django_q.models import Success
from health_check.base import HealthCheck
from health_check.checks import Storage
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from ingestion.models import Source
from ingestion.sourcekinds import stream_kinds
from ingestion.storage import data_storage_describe, s3_error_code
from processing.models import Run, RunStatus

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
class DataStorage(Storage):
    """The data storage (local disk or the S3 bucket) saves, reads and deletes a test file.

    A stopped server, wrong credentials or a missing bucket turn the check red
    with the storage's own answer (the URL shown holds no credentials).
    """

    alias: str = "dataflow"

    def __repr__(self) -> str:
        return f"DataStorage({data_storage_describe(self.storage)})"

    def run(self) -> None:
        try:
            super().run()
        except (BotoCoreError, ClientError, OSError) as error:
            where = data_storage_describe(self.storage)
            reason = f"{s3_error_code(error)}: {error}"
            raise ServiceUnavailable(f"the data storage ({where}) refused a test file: {reason}") from error


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


@dataclasses.dataclass
class StreamConsumers(HealthCheck):
    """Every enabled stream source's consumer reached its broker when it last tried (``consume``).

    A consumer that cannot reach its broker keeps retrying and writes why on
    its source (``consumer_error``); the first success clears it.
    """

    async def run(self) -> None:
        await sync_to_async(self._check, thread_sensitive=True)()

    def _check(self) -> None:
        failing = list(
            Source.objects.filter(kind__in=stream_kinds(), enabled=True)
            .exclude(consumer_error="")
            .order_by("name")
            .values_list("name", "consumer_error")[:5]
        )
        if failing:
            details = "; ".join(f"{name}: {error[:200]}" for name, error in failing)
            raise ServiceUnavailable(f"stream consumer(s) cannot reach their broker: {details}")


@dataclasses.dataclass
class Redis(HealthCheck):
    """A Redis server answers PING within ``REDIS_SOCKET_TIMEOUT``.

    ``role`` says what DataFlow uses it for (the cache, the job broker), so a
    red line says what degrades. The URL stays out of the report (it may hold
    a password); host, port and database number are shown.
    """

    role: str
    url: str = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        db = parts.path.lstrip("/") or "0"
        return f"Redis(role={self.role!r}, host={parts.hostname!r}, port={parts.port or 6379}, db={db})"

    async def run(self) -> None:
        timeout = settings.REDIS_SOCKET_TIMEOUT
        # The asyncio client: the check runs on the view's event loop.
        client = AsyncRedis.from_url(self.url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            await client.ping()  # type: ignore[misc]  # redis' stubs type ping() for both clients: bool | Awaitable[bool]
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(f"{self.role} unreachable: {type(error).__name__}: {error}") from error
        finally:
            await client.aclose()


def health_checks() -> list[Any]:
    """What ``/health/`` runs, from the current settings (Redis only where it is used)."""
    checks: list[Any] = [
        "health_check.checks.Database",
        "health_check.checks.Cache",
        DataStorage,
        DataDirectory,
        MigrationsApplied,
        WorkerCluster,
        StreamConsumers,
    ]
    cache = settings.CACHES["default"]
    if cache["BACKEND"] == f"{RedisCache.__module__}.{RedisCache.__name__}":
        checks.append((Redis, {"role": "cache", "url": _first_location(cache["LOCATION"])}))
    broker = settings.Q_CLUSTER.get("redis")
    if isinstance(broker, str):  # settings set the URL (REDIS_URL); otherwise the ORM broker (Database)
        checks.append((Redis, {"role": "job broker", "url": broker}))
    return checks


def _first_location(location: str | Collection[str]) -> str:
    # Django's RedisCache takes a URL, a comma-separated list or a list; the
    # first one is the primary (where throttle counters are written).
    locations = location.split(",") if isinstance(location, str) else list(location)
    return locations[0].strip()


class HealthView(HealthCheckView):
    """``/health/``: 200 when every check passes, 503 when any fails.

    django-health-check answers 500 for a failed check; 503 says "a dependency
    is unavailable" (what a load balancer or monitor acts on), and keeps 500
    for DataFlow's own errors.
    """

    def get_checks(self) -> Any:
        self.checks = health_checks()
        return super().get_checks()

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().get(request, *args, **kwargs)
        if response.status_code == 500 and any(result.error for result in self.results):
            response.status_code = 503
        return response


def liveness(request: HttpRequest) -> JsonResponse:
    """The process answers; no database, no cache (for container liveness probes)."""
    return JsonResponse({"status": "ok"})
