"""django-q2 entry points: take ids, call a service, nothing else."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django_q.exceptions import TimeoutException

from .notifications import run_notify
from .services.runs import run_execute, run_timed_out, runs_reap, source_pull_scheduled


def run_task(run_id: int) -> str:
    """Process one run. A second delivery of the same run does nothing."""
    try:
        run = run_execute(run_id=run_id)
    except TimeoutException:
        # django-q2 raises this inside the task when Q_TIMEOUT passes, and then
        # replaces the worker process. Record the reason on the run now (rather
        # than leave it running until its heartbeat goes stale); the alarm may
        # have cut a query short, so do it on a fresh connection.
        if not connection.in_atomic_block:
            connection.close()
        run_timed_out(run_id=run_id, timeout=settings.Q_CLUSTER["timeout"])
        raise
    return "not claimed (already taken or ended)" if run is None else run.status


def reap_stale_runs() -> dict[str, int]:
    """Scheduled: requeue or fail runs whose worker died, send queued runs the broker lost, free scratch space."""
    return runs_reap()


def source_pull_task(source_id: int) -> str:
    """Scheduled: pull a source (its django-q2 schedule is kept in step by ``source_schedule_sync``)."""
    run = source_pull_scheduled(source_id=source_id)
    return "skipped (disabled, deleted or still pulling)" if run is None else f"run {run.pk} {run.status}"


def notify_task(run_id: int, event: str) -> dict[str, int]:
    """Send a finished run's notification."""
    return run_notify(run_id=run_id, event=event)
