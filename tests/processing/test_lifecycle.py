"""A run's lifecycle (processing/lifecycle.py): one writer of its state, one notification per end."""

from __future__ import annotations

import ast
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from ingestion.models import Dataset
from processing.models import Run, RunStatus
from processing.services.runs import file_enqueue, run_execute, runs_reap
from tests.conftest import SALES_HEADER, run_queued_tasks, sales_row

ROOT = Path(__file__).resolve().parents[2]


# --- One notification per end ------------------------------------------------------


@pytest.fixture
def told(settings: Any) -> None:
    """Somebody to tell about failed runs (email: no network needed)."""
    settings.NOTIFY_EMAILS = ["ops@example.com"]


def queued_run(dataset: Dataset, csv_file: Callable[..., Path], rows: int = 5) -> Run:
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, rows + 1))]) + "\n")
    with path.open("rb") as fh:
        return file_enqueue(dataset=dataset, source=fh)  # its task is not sent: nothing is committed


def make_stale(run: Run, settings: Any, attempts: int) -> None:
    """The run's worker died ``attempts`` times: it is left running with an old heartbeat."""
    stale = timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT + 60)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=stale, attempts=attempts)


def notifications_queued(run: Run) -> list[tuple[Any, ...]]:
    """The notify tasks waiting on the django-q2 ORM broker for ``run``."""
    from django_q.models import OrmQ

    return [
        tuple(q.args())
        for q in OrmQ.objects.all()
        if q.func() == "processing.tasks.notify_task" and q.args()[0] == run.pk
    ]


@pytest.mark.django_db
def test_a_run_given_up_inside_run_execute_queues_its_failure_notification_once(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any, told: None, django_capture_on_commit_callbacks: Any
) -> None:
    run = queued_run(sales, csv_file)
    make_stale(run, settings, attempts=settings.RUN_MAX_ATTEMPTS)

    with django_capture_on_commit_callbacks(execute=True):
        ended = run_execute(run_id=run.pk)  # takes the stale run over: one start too many

    assert ended is not None and ended.status == RunStatus.FAILED
    assert ended.error.startswith(f"gave up after {settings.RUN_MAX_ATTEMPTS} attempts")
    assert notifications_queued(run) == [(run.pk, "run.failed")]
    assert run_queued_tasks() == [{"sent": 1, "failed": 0}]
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_run_the_reaper_gives_up_queues_its_failure_notification_once(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any, told: None, django_capture_on_commit_callbacks: Any
) -> None:
    run = queued_run(sales, csv_file)
    make_stale(run, settings, attempts=settings.RUN_MAX_ATTEMPTS)

    with django_capture_on_commit_callbacks(execute=True):
        assert runs_reap()["failed"] == 1

    run.refresh_from_db()
    assert run.error.startswith(f"gave up after {settings.RUN_MAX_ATTEMPTS} attempts")
    assert run.raw_file.storage_name.startswith("archive/")
    assert notifications_queued(run) == [(run.pk, "run.failed")]


@pytest.mark.django_db
def test_a_run_the_pipeline_crashes_on_queues_its_failure_notification_once(
    sales: Dataset, csv_file: Callable[..., Path], told: None, django_capture_on_commit_callbacks: Any
) -> None:
    run = queued_run(sales, csv_file)

    def crash(run: Run) -> None:
        raise RuntimeError("the disk went away")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        run_execute(run_id=run.pk, on_chunk=crash)

    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, "internal error: RuntimeError: the disk went away")
    assert notifications_queued(run) == [(run.pk, "run.failed")]


@pytest.mark.django_db
def test_a_run_failed_by_its_file_queues_its_failure_notification_once(
    sales: Dataset, csv_file: Callable[..., Path], told: None, django_capture_on_commit_callbacks: Any
) -> None:
    path = csv_file("nope,header\n1,2\n")
    with path.open("rb") as fh:
        run = file_enqueue(dataset=sales, source=fh)

    with django_capture_on_commit_callbacks(execute=True):
        ended = run_execute(run_id=run.pk)

    assert ended is not None and ended.status == RunStatus.FAILED
    assert notifications_queued(run) == [(run.pk, "run.failed")]


# --- One writer of a run's state -----------------------------------------------------

# A Run's fields that only processing/lifecycle.py may write.
OWNED = {"status", "error", "started_at", "finished_at"}
# Calls that write the keyword arguments they are given.
WRITING_CALLS = {"update", "create", "get_or_create", "update_or_create", "Run"}


def state_writes(source: str) -> list[tuple[int, str]]:
    """Where ``source`` writes a run's status, error or timestamps: (line, what).

    ``x.status = …`` (not ``self.…``, an object's own attribute),
    ``setattr(x, "status", …)`` and ``….update(status=…)`` / ``create`` /
    ``Run(status=…)``. Reads (``filter(status=…)``) and other calls
    (``Response(status=…)``) are not writes.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for t in ast.walk(target):
                if (
                    isinstance(t, ast.Attribute)
                    and t.attr in OWNED
                    and not (isinstance(t.value, ast.Name) and t.value.id == "self")
                ):
                    found.append((node.lineno, f".{t.attr} ="))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "setattr" and len(node.args) > 1:
            attr = node.args[1]
            if isinstance(attr, ast.Constant) and attr.value in OWNED:
                found.append((node.lineno, f"setattr {attr.value}"))
        if name in WRITING_CALLS:
            found.extend((node.lineno, f"{name}({kw.arg}=)") for kw in node.keywords if kw.arg in OWNED)
    return found


def test_the_scan_finds_each_way_of_writing_a_runs_state() -> None:
    source = """
run.status = RunStatus.FAILED
run.finished_at, n = now, 1
setattr(run, "error", "boom")
Run.objects.filter(pk=1).update(started_at=now)
Run.objects.create(dataset=d, status="running")
self.status = status
Run.objects.filter(status="queued").count()
Response(body, status=201)
"""
    assert [what for _, what in state_writes(source)] == [
        ".status =",
        ".finished_at =",
        "setattr error",
        "update(started_at=)",
        "create(status=)",
    ]


def test_only_the_lifecycle_module_writes_a_runs_status_error_or_timestamps() -> None:
    """A new writer (a door ending runs its own way) fails here: call processing.lifecycle instead."""
    writers = []
    for package in ("processing", "api", "dataflow"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative == "processing/lifecycle.py":
                continue
            writers.extend(f"{relative}:{line} {what}" for line, what in state_writes(path.read_text()))
    assert writers == []
