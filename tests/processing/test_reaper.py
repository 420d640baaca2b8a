"""The reaper: what happens to runs whose worker stopped sending heartbeats."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from ingestion.models import Dataset
from processing.models import Run, RunStatus
from processing.services import file_enqueue, run_execute, runs_reap
from tests.conftest import SALES_HEADER, sales_row

pytestmark = pytest.mark.django_db


def queued_run(dataset: Dataset, csv_file: Callable[..., Path], rows: int = 5) -> Run:
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, rows + 1))]) + "\n")
    with path.open("rb") as fh:
        return file_enqueue(dataset=dataset, source=fh)


def make_stale(run: Run, settings: Any, attempts: int) -> None:
    stale = timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT + 60)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=stale, attempts=attempts)


def test_the_reaper_requeues_a_run_whose_worker_died(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    run = queued_run(sales, csv_file)
    make_stale(run, settings, attempts=1)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert runs_reap() == {"requeued": 1, "failed": 0, "resent": 0, "scratch_removed": 0}
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert len(callbacks) == 1
    assert run_execute(run_id=run.pk).status == RunStatus.SUCCEEDED


def test_the_reaper_leaves_runs_with_a_fresh_heartbeat_alone(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = queued_run(sales, csv_file)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now(), attempts=1)

    assert runs_reap() == {"requeued": 0, "failed": 0, "resent": 0, "scratch_removed": 0}
    assert run_execute(run_id=run.pk) is None  # a live worker owns it


def test_the_reaper_fails_a_run_whose_worker_keeps_dying(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any
) -> None:
    run = queued_run(sales, csv_file)
    make_stale(run, settings, attempts=settings.RUN_MAX_ATTEMPTS)

    assert runs_reap() == {"requeued": 0, "failed": 1, "resent": 0, "scratch_removed": 0}
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("gave up after 3 attempts: the worker processing this run stopped responding")
