"""Reads for the processing app."""

from __future__ import annotations

from typing import Any

from .models import RejectedRow, Run


def run_summary(run: Run, *, first_errors: int = 10) -> dict[str, Any]:
    """A run as one JSON-ready object (used by commands and the API)."""
    duration = None
    if run.started_at and run.finished_at:
        duration = (run.finished_at - run.started_at).total_seconds()
    errors = [
        {"line": r.line_number, "errors": r.errors}
        for r in RejectedRow.objects.filter(run=run).order_by("line_number")[:first_errors]
    ]
    return {
        "run_id": run.pk,
        "dataset": run.dataset.slug,
        "status": run.status,
        "error": run.error,
        "trigger": run.trigger,
        "raw_file_sha256": run.raw_file.sha256 if run.raw_file_id else None,
        "rows_read": run.rows_read,
        "valid": run.rows_valid,
        "rejected": run.rows_rejected,
        "inserted": run.rows_inserted,
        "updated": run.rows_updated,
        "unchanged": run.rows_unchanged,
        "progress": run.progress,
        "attempts": run.attempts,
        "parent": run.parent_id,
        "cancel_requested": run.cancel_requested,
        "noop_of": run.noop_of_id,
        "unknown_columns": run.summary.get("unknown_columns", []),
        "summary": run.summary,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": duration,
        "first_errors": errors,
    }
