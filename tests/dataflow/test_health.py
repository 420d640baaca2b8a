"""/health/ and /health/live/: what operators and load balancers poll."""

from __future__ import annotations

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
from processing.services import file_enqueue
from tests.cluster import Cluster, postgres_only, wait_for
from tests.conftest import SALES_HEADER, sales_row


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
        "Storage",
        "DataDirectory",
        "MigrationsApplied",
        "WorkerCluster",
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
