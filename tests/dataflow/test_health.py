"""/health/ and /health/live/: what operators and load balancers poll."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.utils import timezone
from django_q.models import Task

from dataflow.health import REAPER_FUNC
from processing.models import Run
from processing.services.runs import file_enqueue
from tests.cluster import ROOT, Cluster, postgres_only, wait_for
from tests.conftest import SALES_HEADER, RedisServer, sales_row


def worker_ran_reaper(ago: timedelta = timedelta(seconds=5)) -> None:
    """The row a django-q2 worker writes after running the scheduled reaper."""
    stopped = timezone.now() - ago
    Task.objects.create(
        id=f"reaper-{stopped.timestamp()}",
        name="reaper",
        func=REAPER_FUNC,
        started=stopped - timedelta(seconds=1),
        stopped=stopped,
        success=True,
    )


def health(client: Client) -> tuple[int, dict[str, str]]:
    response = client.get("/health/", HTTP_ACCEPT="application/json")
    return response.status_code, response.json()


def check(results: dict[str, str], name: str) -> str:
    return next(v for k, v in results.items() if k.startswith(name))


@pytest.mark.django_db
def test_health_is_green_when_every_check_passes(client: Client) -> None:
    worker_ran_reaper()
    status, results = health(client)

    assert status == 200, results
    assert set(results.values()) == {"OK"}
    assert {k.split("(")[0] for k in results} == {
        "Database",
        "Cache",
        "DataStorage",
        "DataDirectory",
        "MigrationsApplied",
        "WorkerCluster",
        "StreamConsumers",
    }
    assert client.get("/health/?format=json").status_code == 200


@pytest.mark.django_db
def test_health_is_red_without_a_recent_worker(client: Client) -> None:
    worker_ran_reaper(ago=timedelta(minutes=30))
    status, results = health(client)

    assert status == 503
    assert check(results, "WorkerCluster").startswith("Unavailable: no background worker (last seen 18")


@pytest.mark.django_db
def test_health_warns_when_a_run_waits_too_long(client: Client, sales: Any, csv_file: Any, settings: Any) -> None:
    worker_ran_reaper()
    with csv_file(SALES_HEADER + "\n" + sales_row(1) + "\n").open("rb") as fh:
        run = file_enqueue(dataset=sales, source=fh)
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=2))

    status, results = health(client)
    assert status == 503
    assert "the oldest queued run has waited 72" in check(results, "WorkerCluster")


@pytest.mark.django_db
def test_health_is_red_when_the_disk_is_nearly_full(client: Client, settings: Any) -> None:
    worker_ran_reaper()
    settings.HEALTH_MIN_FREE_MB = 10**9
    status, results = health(client)

    assert status == 503
    assert "MB free in DATA_DIR (minimum 1000000000 MB)" in check(results, "DataDirectory")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_health_is_red_while_a_migration_is_missing_and_green_after(client: Client) -> None:
    worker_ran_reaper()
    # Unapply processing's latest migration, whichever it is.
    graph = MigrationLoader(connection).graph
    (latest,) = graph.leaf_nodes("processing")
    (parent,) = [p for p in graph.node_map[latest].parents if p.key[0] == "processing"]
    call_command("migrate", "processing", parent.key[1], verbosity=0)
    status, results = health(client)
    assert status == 503
    assert check(results, "MigrationsApplied") == (
        f"Unavailable: 1 migration(s) not applied (processing.{latest[1]}); run manage.py migrate"
    )

    call_command("migrate", verbosity=0)
    status, results = health(client)
    assert status == 200, results


def test_liveness_answers_without_the_database(client: Client) -> None:
    # No django_db mark: any database access would fail this test.
    response = client.get("/health/live/")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_health_turns_green_when_a_real_worker_starts(client: Client, data_dir: Path, tmp_path: Path) -> None:
    _, results = health(client)
    assert check(results, "WorkerCluster").startswith("Unavailable: no background worker")

    cluster = Cluster(data_dir, tmp_path / "qcluster.log").start()
    try:
        wait_for(lambda: health(client)[0] == 200, timeout=60, what="the worker to run the scheduled reaper")
    finally:
        cluster.stop()
    assert connection.vendor == "postgresql"


def use_redis(settings: Any, url: str) -> None:
    """What REDIS_URL sets: the cache (the redis_cache fixture) and the job broker."""
    settings.REDIS_URL = url
    settings.Q_CLUSTER = {**{k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"}, "redis": url}


def redis_results(results: dict[str, str], port: int) -> dict[str, str]:
    return {
        role: results[f"Redis(role='{role}', host='127.0.0.1', port={port}, db=0)"] for role in ("cache", "job broker")
    }


@pytest.mark.django_db
def test_health_is_green_with_redis_as_cache_and_job_broker(
    client: Client, redis_cache: RedisServer, settings: Any
) -> None:
    use_redis(settings, redis_cache.url)
    worker_ran_reaper()

    status, results = health(client)

    assert status == 200, results
    assert redis_results(results, redis_cache.port) == {"cache": "OK", "job broker": "OK"}


@pytest.mark.django_db
def test_health_is_red_naming_redis_while_it_is_down_and_green_once_it_is_back(
    client: Client, redis_cache: RedisServer, settings: Any
) -> None:
    use_redis(settings, redis_cache.url)
    worker_ran_reaper()
    assert health(client)[0] == 200

    redis_cache.stop()
    started = time.monotonic()
    status, results = health(client)
    elapsed = time.monotonic() - started

    assert status == 503
    refused = f"unreachable: ConnectionError: Error 111 connecting to 127.0.0.1:{redis_cache.port}."
    red = redis_results(results, redis_cache.port)
    assert red["cache"].startswith(f"Unavailable: cache {refused}"), red
    assert red["job broker"].startswith(f"Unavailable: job broker {refused}"), red
    assert check(results, "Cache") == "Unexpected Result: Connection Error"
    assert elapsed < 2

    redis_cache.start()
    status, results = health(client)
    assert status == 200, results


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers: a Redis that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.mark.django_db
def test_health_answers_quickly_and_red_when_redis_hangs(client: Client, silent_server: int, settings: Any) -> None:
    url = f"redis://127.0.0.1:{silent_server}/0"
    settings.REDIS_SOCKET_TIMEOUT = 0.3
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.3},
        }
    }
    use_redis(settings, url)
    worker_ran_reaper()

    started = time.monotonic()
    status, results = health(client)
    elapsed = time.monotonic() - started

    assert status == 503
    timeout = f"TimeoutError: Timeout reading from 127.0.0.1:{silent_server}"
    assert redis_results(results, silent_server) == {
        "cache": f"Unavailable: cache unreachable: {timeout}",
        "job broker": f"Unavailable: job broker unreachable: {timeout}",
    }
    assert elapsed < 2


def test_with_redis_url_set_the_redis_checks_pass(tmp_path: Path, redis_server: RedisServer) -> None:
    """The production wiring: REDIS_URL in the environment, read by the settings at start-up."""
    script = (
        "from django.test import Client; "
        "r = Client().get('/health/?format=json', HTTP_HOST='localhost'); "
        "print(r.status_code, r.content.decode())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "dataflow.settings.test",
            "DATA_DIR": str(tmp_path),
            "REDIS_URL": redis_server.url,
            "LOG_LEVEL": "ERROR",
        }
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    status, _, body = result.stdout.strip().splitlines()[-1].partition(" ")
    results = json.loads(body)

    # Red overall (a fresh database, no worker), but never a 500, and Redis is fine.
    assert status == "503"
    assert redis_results(results, redis_server.port) == {"cache": "OK", "job broker": "OK"}
    assert check(results, "Cache") == "OK"
