"""Scratch files and the processed file: whatever way a run ends, it leaves no scratch behind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from ingestion.models import Dataset
from ingestion.storage import data_storage
from processing.models import Run, RunStatus
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, all_apps, sales_row
from tests.records import records

pytestmark = pytest.mark.django_db


def ingest(dataset: Dataset, path: Path, **kwargs: Any) -> Run:
    with path.open("rb") as fh:
        return file_ingest(dataset=dataset, source=fh, original_name=path.name, **kwargs)


def sales_file(rows: list[str]) -> str:
    return "\n".join([SALES_HEADER, *rows]) + "\n"


def scratch(data_dir: Path) -> list[str]:
    work = data_dir / "work"
    return sorted(p.name for p in work.iterdir()) if work.exists() else []


def processed(data_dir: Path) -> list[Path]:
    folder = data_dir / "processed"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def seen_tables() -> list[str]:
    return [t for t in connection.introspection.table_names() if t.startswith("dataflow_seen_")]


BAD = "S0,not-a-date,books,1,1,a@example.com,US,,yes"


def test_a_run_failed_by_the_reject_threshold_leaves_no_scratch_and_no_empty_processed_file(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    sales.reject_threshold = 0.0
    sales.save()

    run = ingest(sales, csv_file(sales_file([sales_row(1), BAD])))

    assert run.status == RunStatus.FAILED and "threshold" in run.error
    assert scratch(data_dir) == []
    assert processed(data_dir) == []
    assert "processed_file" not in run.summary
    assert seen_tables() == []


def test_a_run_failed_for_a_missing_column_leaves_no_scratch_or_processed_file(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    run = ingest(sales, csv_file("id,timestamp\nS1,2024-01-01\n"))

    assert run.status == RunStatus.FAILED and "missing" in run.error
    assert (scratch(data_dir), processed(data_dir)) == ([], [])


def test_a_run_stopped_by_the_threshold_after_loading_keeps_the_processed_rows_it_loaded(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    sales.reject_threshold = 0.1
    sales.save()
    rows = [sales_row(i) for i in range(1, 101)] + [BAD.replace("S0", f"B{i}") for i in range(30)]

    run = ingest(sales, csv_file(sales_file(rows)), chunk_size=100)

    assert run.status == RunStatus.FAILED and run.rows_inserted == 100
    assert scratch(data_dir) == []
    assert processed(data_dir) == [data_dir / run.summary["processed_file"]]
    assert len((data_dir / run.summary["processed_file"]).read_text().splitlines()) == 1 + 100


def test_a_cancelled_run_leaves_no_scratch_file(sales: Dataset, csv_file: Callable[..., Path], data_dir: Path) -> None:
    def cancel(run: Run) -> None:
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)

    run = ingest(sales, csv_file(sales_file([sales_row(i) for i in range(1, 10)])), chunk_size=3, on_chunk=cancel)

    assert (run.status, run.rows_inserted) == (RunStatus.CANCELLED, 3)
    assert scratch(data_dir) == []
    assert len((data_dir / run.summary["processed_file"]).read_text().splitlines()) == 1 + 3


def test_a_crashed_run_leaves_no_scratch_and_no_processed_file(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    def crash(run: Run) -> None:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        ingest(sales, csv_file(sales_file([sales_row(i) for i in range(1, 10)])), chunk_size=3, on_chunk=crash)

    run = Run.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.error == "internal error: RuntimeError: the database went away"
    assert (scratch(data_dir), processed(data_dir)) == ([], [])
    assert seen_tables() == []


@pytest.fixture
def replaced_worker() -> Iterator[None]:
    """After a task stopped by the time limit, django-q2 replaces its worker process; the tests' process goes on.

    The alarm can go off inside Django's own transaction bookkeeping and leave
    the connection marked as inside a transaction block that no code will
    leave. A new worker would start with a new connection: so does the next test.
    """
    yield
    if connection.in_atomic_block:
        connection.atomic_blocks.clear()
        connection.savepoint_ids.clear()
        connection.in_atomic_block = False
        connection.needs_rollback = False
        connection.close()


# Transactional, as in a worker: the alarm may cut a query short, and the task then
# goes on with a fresh connection, which it cannot do inside a test's transaction.
@pytest.mark.django_db(transaction=True, available_apps=all_apps())
def test_a_run_stopped_by_the_job_queue_time_limit_fails_at_once_saying_so(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path, settings: Any, replaced_worker: None
) -> None:
    """django-q2's own alarm, as its worker sets it around a task."""
    from django_q.exceptions import TimeoutException
    from django_q.timeout import TimeoutHandler

    from ingestion.services.raw_files import raw_file_receive
    from processing.services.runs import run_create
    from processing.tasks import run_task

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 1}
    path = csv_file(sales_file([sales_row(i) for i in range(1, 40_001)]))
    with path.open("rb") as fh:
        raw_file = raw_file_receive(dataset=sales, source=fh, original_name=path.name)
    run = run_create(dataset=sales, raw_file=raw_file, chunk_size=20)

    with pytest.raises(TimeoutException), TimeoutHandler(1):
        run_task(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("the run took longer than Q_TIMEOUT=1 s and was stopped")
    assert 0 < run.rows_read < 40_000
    assert records(sales).count() == run.rows_inserted
    assert scratch(data_dir) == []
    assert seen_tables() == []
    assert run.raw_file.storage_name.startswith("archive/")


# --- A full disk -----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path_factory: pytest.TempPathFactory, settings: Any) -> Iterator[Path]:
    """DATA_DIR on a 1 MiB tmpfs (root only)."""
    root = tmp_path_factory.mktemp("small-disk")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    settings.STORAGES = {
        **settings.STORAGES,
        "dataflow": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    settings.DATAFLOW = {**settings.DATAFLOW, "WORK_DIR": root / "work"}
    try:
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_a_run_that_fills_the_disk_fails_and_leaves_the_disk_as_before(
    sales: Dataset, csv_file: Callable[..., Path], small_disk: Path
) -> None:
    from ingestion.services.raw_files import raw_file_receive
    from processing.services.runs import run_create, run_execute

    # ~650 KB of raw file on a 1 MiB disk; its processed rows do not fit in what is left.
    rows = [sales_row(i, description="x" * 40) for i in range(1, 6_001)]
    path = csv_file(sales_file(rows))
    with path.open("rb") as fh:
        raw_file = raw_file_receive(dataset=sales, source=fh, original_name=path.name)
    (small_disk / "work").mkdir(exist_ok=True)
    (small_disk / "processed" / "sales").mkdir(parents=True, exist_ok=True)
    used_before = shutil.disk_usage(small_disk).used
    run = run_create(dataset=sales, raw_file=raw_file, chunk_size=500)

    with pytest.raises(OSError):
        run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("the disk is full: [Errno 28] No space left on device")
    assert scratch(small_disk) == []
    assert processed(small_disk) == []
    assert shutil.disk_usage(small_disk).used == used_before
    assert data_storage().exists(run.raw_file.storage_name)  # the raw file is kept (archived)


@pytest.mark.django_db(transaction=True, available_apps=all_apps())
def test_a_time_limit_that_cuts_a_query_short_still_fails_the_run_saying_so(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any, replaced_worker: None
) -> None:
    """The alarm goes off while the run waits on a lock: the connection is mid-query.

    A schema change holds the dataset row; the run's first chunk waits for it
    until the job queue's time limit passes.
    """
    import psycopg
    from django_q.exceptions import TimeoutException
    from django_q.timeout import TimeoutHandler

    from ingestion.services.raw_files import raw_file_receive
    from processing.services.runs import run_create
    from processing.tasks import run_task

    if connection.vendor != "postgresql":
        pytest.skip("row locks that make a query wait are Postgres's")
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 1}
    path = csv_file(sales_file([sales_row(i) for i in range(1, 101)]))
    with path.open("rb") as fh:
        raw_file = raw_file_receive(dataset=sales, source=fh, original_name=path.name)
    run = run_create(dataset=sales, raw_file=raw_file, chunk_size=20)
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as other:
        other.execute("SET lock_timeout = '10s'")  # a test that waits for ever would stop the whole suite
        other.execute("SELECT 1 FROM ingestion_dataset WHERE id = %s FOR NO KEY UPDATE", [sales.pk])
        with pytest.raises(TimeoutException), TimeoutHandler(1):
            run_task(run.pk)
        other.rollback()

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("the run took longer than Q_TIMEOUT=1 s and was stopped")
    assert (run.rows_read, records(sales).count()) == (0, 0)
    assert seen_tables() == []
