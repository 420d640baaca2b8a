"""Reads for the processing app."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from ingestion.models import Dataset

from .models import RejectedRow, Run, RunStatus


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
        "raw_file_sha256": run.raw_file.sha256 if run.raw_file is not None else None,
        # How the file is read: encoding and delimiter with where each came from (as the API's run.file).
        "file": run.raw_file.dialect() if run.raw_file is not None else None,
        "rows_read": run.rows_read,
        "valid": run.rows_valid,
        "rejected": run.rows_rejected,
        "inserted": run.rows_inserted,
        "updated": run.rows_updated,
        "unchanged": run.rows_unchanged,
        "progress": run.progress,
        "attempts": run.attempts,
        "enqueued_at": run.enqueued_at,
        "enqueue_count": run.enqueue_count,
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


# --- The operations dashboard --------------------------------------------------


def dashboard_days(days: int = 14) -> list[date]:
    today = timezone.localdate()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def runs_per_day_by_status(days: int = 14) -> dict[date, dict[str, int]]:
    """How many runs were created each day, by status (oldest day first)."""
    window = dashboard_days(days)
    counts: dict[date, dict[str, int]] = {d: {} for d in window}
    rows = (
        Run.objects.filter(created_at__date__gte=window[0])
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        if row["day"] in counts:
            counts[row["day"]][row["status"]] = row["n"]
    return counts


def rows_per_day(days: int = 14) -> dict[date, dict[str, int]]:
    """Rows loaded (inserted + updated) and rejected per day, by the day runs finished."""
    window = dashboard_days(days)
    totals: dict[date, dict[str, int]] = {d: {"loaded": 0, "rejected": 0} for d in window}
    rows = (
        Run.objects.filter(finished_at__date__gte=window[0])
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(inserted=Sum("rows_inserted"), updated=Sum("rows_updated"), rejected=Sum("rows_rejected"))
    )
    for row in rows:
        if row["day"] in totals:
            totals[row["day"]] = {
                "loaded": (row["inserted"] or 0) + (row["updated"] or 0),
                "rejected": row["rejected"] or 0,
            }
    return totals


def datasets_with_last_run() -> list[tuple[Dataset, Run | None]]:
    latest = Run.objects.filter(dataset=OuterRef("pk")).order_by("-created_at", "-id").values("pk")[:1]
    datasets = list(Dataset.objects.annotate(last_run_id=Subquery(latest)).order_by("slug"))
    runs = Run.objects.in_bulk([d.last_run_id for d in datasets if d.last_run_id])
    return [(d, runs.get(d.last_run_id)) for d in datasets]


def runs_in_progress() -> list[Run]:
    return list(
        Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        .select_related("dataset")
        .order_by("created_at")[:50]
    )
