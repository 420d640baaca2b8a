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
