"""The job system against a real django-q2 cluster (``manage.py qcluster``) on Postgres.

Each test starts the cluster as a separate process group, so it can be
killed with SIGKILL like a crashed worker machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion.models import Dataset
from processing.models import Run, RunStatus, RunTrigger
from processing.services.broker import task_enqueue
from processing.services.runs import file_enqueue, run_cancel, run_retry, runs_reap
from tests.cluster import HEARTBEAT_TIMEOUT, Cluster, postgres_only, wait_for
from tests.conftest import SALES_HEADER, sales_row
from tests.records import records

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def short_heartbeat(settings: Any) -> None:
    """This process (the reaper) and the cluster agree on a short heartbeat timeout."""
    settings.RUN_HEARTBEAT_TIMEOUT = HEARTBEAT_TIMEOUT


@pytest.fixture
def cluster(data_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def start(**env: str) -> Cluster:
        env = {"RUN_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT), **env}
        c = Cluster(data_dir, tmp_path / "qcluster.log", **env).start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def finished(run: Run) -> Callable[[], bool]:
    def check() -> bool:
        run.refresh_from_db()
        return run.is_finished

    return check


def enqueue(dataset: Dataset, csv_file: Callable[..., Path], rows: int, **kwargs: object) -> Run:
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, rows + 1))]) + "\n")
    with path.open("rb") as fh:
        return file_enqueue(dataset=dataset, source=fh, trigger=RunTrigger.API, **kwargs)


def test_a_queued_run_is_processed_by_the_cluster(
    sales: Dataset, csv_file: Callable[..., Path], cluster: Callable[[], Cluster]
) -> None:
    run = enqueue(sales, csv_file, 50)
    assert run.status == RunStatus.QUEUED
    cluster()

    wait_for(finished(run), what="the run to finish")
    assert (run.status, run.rows_read, run.rows_inserted, run.attempts) == (RunStatus.SUCCEEDED, 50, 50, 1)
    assert run.raw_file.storage_name.startswith("archive/")


def test_a_killed_cluster_resumes_the_run_with_exact_counts_and_no_duplicates(
    sales: Dataset, csv_file: Callable[..., Path], cluster: Callable[[], Cluster]
) -> None:
    total = 6000
    run = enqueue(sales, csv_file, total, chunk_size=100)
    first = cluster()

    def some_chunks_committed() -> bool:
        run.refresh_from_db()
        return run.rows_read >= 500

    wait_for(some_chunks_committed, what="a few chunks to commit")
    first.kill()
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert 500 <= run.rows_read < total, "the run should have been killed mid-way"
    committed = run.checkpoint["rows"]
    assert records(sales).count() == committed

    time.sleep(HEARTBEAT_TIMEOUT + 0.5)
    cluster()
    assert runs_reap() == {"requeued": 1, "failed": 0, "resent": 0, "scratch_removed": 0}

    wait_for(finished(run), what="the resumed run to finish")
    assert run.status == RunStatus.SUCCEEDED
    assert (run.rows_read, run.rows_valid, run.rows_inserted, run.rows_unchanged) == (total, total, total, 0)
    assert run.attempts == 2
    assert records(sales).count() == total
    assert records(sales).filter(last_run_id=run.pk).count() == total


def test_a_run_delivered_twice_is_executed_once(
    sales: Dataset, csv_file: Callable[..., Path], cluster: Callable[[], Cluster]
) -> None:
    run = enqueue(sales, csv_file, 300, chunk_size=50)
    task_enqueue(run.pk)  # a second delivery of the same run
    cluster()

    wait_for(finished(run), what="the run to finish")
    from django_q.models import Task

    wait_for(lambda: Task.objects.filter(name=f"run-{run.pk}").count() == 2, what="both deliveries")
    results = sorted(Task.objects.filter(name=f"run-{run.pk}").values_list("result", flat=True))
    assert results == ["not claimed (already taken or ended)", "succeeded"]
    assert (run.attempts, run.rows_inserted) == (1, 300)


def test_a_running_run_is_cancelled_at_a_chunk_boundary(
    sales: Dataset, csv_file: Callable[..., Path], cluster: Callable[[], Cluster]
) -> None:
    total = 6000
    run = enqueue(sales, csv_file, total, chunk_size=100)
    cluster()

    def running() -> bool:
        run.refresh_from_db()
        return run.rows_read >= 200

    wait_for(running, what="the run to start")
    run_cancel(run=run)
    wait_for(finished(run), what="the run to stop")

    assert run.status == RunStatus.CANCELLED
    assert run.rows_read < total
    assert run.rows_read % 100 == 0
    assert records(sales).count() == run.rows_inserted == run.rows_read


def test_a_failed_run_is_retried_as_a_new_linked_run(
    sales: Dataset, csv_file: Callable[..., Path], cluster: Callable[[], Cluster]
) -> None:
    sales.reject_threshold = 0.0
    sales.save()
    path = csv_file("\n".join([SALES_HEADER, sales_row(1), "S2,bad,books,1,1,a@example.com,US,,yes"]) + "\n")
    with path.open("rb") as fh:
        run = file_enqueue(dataset=sales, source=fh)
    cluster()
    wait_for(finished(run), what="the first run")
    assert run.status == RunStatus.FAILED and "threshold" in run.error

    sales.reject_threshold = None
    sales.save()
    retry = run_retry(run=run, trigger=RunTrigger.API)
    wait_for(finished(retry), what="the retry")

    assert (retry.parent_id, retry.raw_file_id, retry.status) == (run.pk, run.raw_file_id, "partially_succeeded")
    assert records(sales).count() == 1


def test_a_scheduled_source_is_pulled_page_by_page_by_the_cluster(
    make_source: Callable[..., Any], cluster: Callable[[], Cluster]
) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import Schedule

    source = make_source(schedule="interval", interval_minutes=60)
    Schedule.objects.filter(name=source.schedule_name).update(next_run=timezone.now() - timedelta(seconds=1))
    cluster()

    def pulled() -> bool:
        return Run.objects.filter(source=source, status=RunStatus.SUCCEEDED).exists()

    wait_for(pulled, timeout=120, what="the scheduled pull to finish")
    run = Run.objects.get(source=source)
    assert (run.trigger, run.rows_inserted, run.summary["pull"]["pages"]) == (RunTrigger.SCHEDULE, 25, 4)
    source.refresh_from_db()
    assert source.watermark == "25"
    assert records(source.dataset).count() == 25


def test_a_run_that_passes_q_timeout_fails_at_once_saying_so(
    sales: Dataset, csv_file: Callable[..., Path], cluster: Callable[..., Cluster], data_dir: Path
) -> None:
    from django_q.models import Task

    total = 60_000
    run = enqueue(sales, csv_file, total, chunk_size=50)
    # A heartbeat timeout far away: only the time limit can end this run.
    cluster(Q_TIMEOUT="2", RUN_HEARTBEAT_TIMEOUT="300")

    wait_for(finished(run), timeout=30, what="the time limit to stop the run")
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("the run took longer than Q_TIMEOUT=2 s and was stopped")
    assert 0 < run.rows_read < total
    assert records(sales).count() == run.rows_inserted
    assert not (data_dir / "work" / f"run-{run.pk}.csv").exists()
    wait_for(lambda: Task.objects.filter(name=f"run-{run.pk}").exists(), what="django-q2's record of the task")
    task = Task.objects.get(name=f"run-{run.pk}")
    assert not task.success and "Task exceeded maximum timeout value (2 seconds)" in task.result


def test_a_task_the_cluster_cannot_verify_is_sent_again_by_the_reaper(
    sales: Dataset,
    csv_file: Callable[..., Path],
    cluster: Callable[..., Cluster],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The web side signed the task with the SECRET_KEY it had; the workers run with a new one."""
    from datetime import timedelta

    from django.utils import timezone
    from django_q.conf import Conf
    from django_q.models import OrmQ

    new_key = "the-secret-key-after-it-was-rotated-0123456789-abcdefghij"
    run = enqueue(sales, csv_file, 20)
    cluster(SECRET_KEY=new_key)

    wait_for(lambda: not OrmQ.objects.exists(), what="the cluster to throw the task away")
    time.sleep(1)
    run.refresh_from_db()
    assert (run.status, run.enqueue_count) == (RunStatus.QUEUED, 1)

    # The reaper runs in the cluster, with the cluster's key.
    monkeypatch.setattr(Conf, "SECRET_KEY", new_key)
    Run.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(seconds=settings.RUN_REQUEUE_AFTER + 1))
    runs_reap()

    wait_for(finished(run), what="the run sent again to finish")
    assert (run.status, run.rows_inserted, run.attempts) == (RunStatus.SUCCEEDED, 20, 1)
    assert run.enqueue_count >= 2
