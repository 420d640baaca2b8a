"""django-q2 entry points: take ids, call a service, nothing else."""

from __future__ import annotations

from .services import run_execute, runs_reap


def run_task(run_id: int) -> str:
    """Process one run. A second delivery of the same run does nothing."""
    run = run_execute(run_id=run_id)
    return "not claimed (already taken or ended)" if run is None else run.status


def reap_stale_runs() -> dict[str, int]:
    """Scheduled: requeue or fail runs whose worker stopped sending heartbeats."""
    return runs_reap()


def source_pull_task(source_id: int) -> str:
    """Scheduled: pull a source (its django-q2 schedule is kept in step by ``source_schedule_sync``)."""
    from .sources import source_pull_scheduled

    run = source_pull_scheduled(source_id=source_id)
    return "skipped (disabled, deleted or still pulling)" if run is None else f"run {run.pk} {run.status}"


def notify_task(run_id: int, event: str) -> dict[str, int]:
    """Send a finished run's notification."""
    from .notifications import run_notify

    return run_notify(run_id=run_id, event=event)
