"""The reaper: what happens to runs whose worker stopped sending heartbeats."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from ingestion.models import Dataset
from processing.models import Run, RunStatus
from processing.services.runs import file_enqueue, run_execute, runs_reap
from tests.conftest import SALES_HEADER, sales_row
from tests.records import records

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


# --- Scratch files a dead worker left --------------------------------------------------


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing cleans up after it."""


def killed_mid_run(dataset: Dataset, csv_file: Callable[..., Path], rows: int = 9) -> Run:
    """A run whose worker died after its first chunk: scratch file and seen table on disk, run ``running``."""
    run = queued_run(dataset, csv_file, rows=rows)
    Run.objects.filter(pk=run.pk).update(chunk_size=3)

    def die(run: Run) -> None:
        raise WorkerKilled

    with pytest.raises(WorkerKilled):
        run_execute(run_id=run.pk, on_chunk=die)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.checkpoint["rows"] == 3
    return run


def work_file(run: Run, data_dir: Path) -> Path:
    return data_dir / "work" / f"run-{run.pk}.csv"


def backdate(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def seen_table_exists(run: Run) -> bool:
    return f"dataflow_seen_{run.pk}" in connection.introspection.table_names()


def test_the_reaper_removes_the_scratch_of_a_run_whose_worker_died_for_good(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any, data_dir: Path
) -> None:
    run = killed_mid_run(sales, csv_file)
    assert work_file(run, data_dir).stat().st_size > 0 and seen_table_exists(run)
    make_stale(run, settings, attempts=settings.RUN_MAX_ATTEMPTS)

    assert runs_reap()["failed"] == 1

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert not work_file(run, data_dir).exists()
    assert not seen_table_exists(run)
    assert run.raw_file.storage_name.startswith("archive/")


def test_the_reaper_keeps_the_scratch_file_a_requeued_run_resumes_from(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any, data_dir: Path
) -> None:
    run = killed_mid_run(sales, csv_file)
    backdate(work_file(run, data_dir), settings.RUN_HEARTBEAT_TIMEOUT + 60)
    make_stale(run, settings, attempts=1)

    assert runs_reap() == {"requeued": 1, "failed": 0, "resent": 0, "scratch_removed": 0}
    assert work_file(run, data_dir).exists()

    resumed = run_execute(run_id=run.pk)
    assert resumed is not None and resumed.status == RunStatus.SUCCEEDED
    assert "processed_file_incomplete" not in resumed.summary
    assert len((data_dir / resumed.summary["processed_file"]).read_text().splitlines()) == 1 + 9
    assert not work_file(run, data_dir).exists()


def test_the_reaper_removes_scratch_files_of_ended_and_unknown_runs_only(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any, data_dir: Path
) -> None:
    old = settings.RUN_HEARTBEAT_TIMEOUT + 60
    ended = run_execute(run_id=queued_run(sales, csv_file).pk)
    assert ended is not None and ended.is_finished
    running = queued_run(sales, csv_file)
    Run.objects.filter(pk=running.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now())
    queued = queued_run(sales, csv_file)
    work = data_dir / "work"
    left_by_the_ended_run = work / f"run-{ended.pk}.csv"
    left_by_a_deleted_run = work / "run-999999.csv"
    of_the_running_run = work / f"run-{running.pk}.csv"
    of_the_queued_run = work / f"run-{queued.pk}.csv"  # requeued: it resumes from it
    just_written = work / "run-999998.csv"  # perhaps a run whose transaction has not committed yet
    not_a_work_file = work / "notes.txt"
    for path in (left_by_the_ended_run, left_by_a_deleted_run, of_the_running_run, of_the_queued_run, not_a_work_file):
        path.write_text("_line,id\n")
        backdate(path, old)
    just_written.write_text("_line,id\n")

    assert runs_reap()["scratch_removed"] == 2

    assert sorted(p.name for p in work.iterdir()) == sorted(
        p.name for p in (of_the_running_run, of_the_queued_run, just_written, not_a_work_file)
    )


def test_a_worker_whose_run_was_taken_over_stops_and_the_new_owner_loads_each_row_once(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    """A worker alive but slow (its heartbeat went stale): the run was requeued and claimed by another."""
    run = queued_run(sales, csv_file, rows=9)
    Run.objects.filter(pk=run.pk).update(chunk_size=3)

    def taken_over_after_the_first_chunk(r: Run) -> None:
        if r.rows_read == 3:
            Run.objects.filter(pk=r.pk).update(attempts=F("attempts") + 1, heartbeat_at=timezone.now())

    assert run_execute(run_id=run.pk, on_chunk=taken_over_after_the_first_chunk) is None

    run.refresh_from_db()
    assert (run.status, run.rows_read, run.rows_inserted, run.attempts) == (RunStatus.RUNNING, 3, 3, 2)
    assert records(sales).count() == 3
    assert work_file(run, data_dir).exists()  # the new owner resumes from it

    finished = run_execute(run_id=run.pk, resume=True)
    assert finished is not None and finished.status == RunStatus.SUCCEEDED
    assert (finished.rows_read, finished.rows_inserted, finished.rows_unchanged) == (9, 9, 0)
    assert len((data_dir / finished.summary["processed_file"]).read_text().splitlines()) == 1 + 9
