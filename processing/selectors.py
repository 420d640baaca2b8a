"""Reads for the processing app."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from ingestion.models import Dataset, RawFile
from ingestion.selectors import restrict

from .models import RejectedRow, Run, RunStatus
from .quality.selectors import run_anomalies, run_checks, run_quality_of

# The counters of a run, in the order every door shows them.
RUN_COUNTERS = ("rows_read", "rows_valid", "rows_rejected", "rows_inserted", "rows_updated", "rows_unchanged")


def instant_text(value: datetime | None) -> str | None:
    """A moment as the API writes it: ISO 8601 in the current time zone, UTC as ``Z``."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def run_file_summary(raw_file: RawFile) -> dict[str, Any]:
    """The file a run reads: its name as sent, checksum, size, format and how it is read."""
    return {
        "name": raw_file.original_name,
        "sha256": raw_file.sha256,
        "size": raw_file.size,
        "format": raw_file.format,
        **raw_file.dialect(),
    }


def run_summary(run: Run, *, detail: bool = True, first_errors: int = 10) -> dict[str, Any]:
    """A run's outward shape: the one set of names and values every door shows.

    The API's run (``api/serializers/runs.py`` renders this), ``run_status
    --json`` and ``ingest_csv --json``, the console's run page and progress
    JSON, and the webhook and email of a notification. Values are JSON-ready
    (moments as ISO 8601 text). ``detail`` adds the run's ``summary`` (unknown
    columns, notes), its duration and its first rejected rows, which cost a
    query the API's list of runs does not make.
    """
    shape: dict[str, Any] = {
        "id": run.pk,
        "dataset": run.dataset.slug,
        "status": run.status,
        "finished": run.is_finished,
        "progress": run.progress,
        "error": run.error,
        "trigger": run.trigger,
        "source": run.source.name if run.source is not None else None,
        "started_by": run.started_by.get_username() if run.started_by is not None else None,
        "forced": run.forced,
        "parent": run.parent_id,
        "noop_of": run.noop_of_id,
        "cancel_requested": run.cancel_requested,
        "attempts": run.attempts,
        "enqueued_at": instant_text(run.enqueued_at),
        "enqueue_count": run.enqueue_count,
        **{name: getattr(run, name) for name in RUN_COUNTERS},
        "bytes_total": run.bytes_total,
        "bytes_read": run.bytes_read,
        "file": run_file_summary(run.raw_file) if run.raw_file is not None else None,
        "created_at": instant_text(run.created_at),
        "started_at": instant_text(run.started_at),
        "finished_at": instant_text(run.finished_at),
    }
    if not detail:
        return shape
    duration = None
    if run.started_at and run.finished_at:
        duration = (run.finished_at - run.started_at).total_seconds()
    errors = [
        {"line": r.line_number, "errors": r.errors}
        for r in RejectedRow.objects.filter(run=run, discarded_at=None).order_by("line_number")[:first_errors]
    ]
    quality = run_quality_of(run)
    return {
        **shape,
        "summary": run.summary,
        "duration_seconds": duration,
        "first_errors": errors,
        # Data quality (docs/quality.md): the declared checks' results and the anomalies.
        "checks": run_checks(run, quality),
        "anomalies": run_anomalies(run, quality),
    }


# --- The operations dashboard --------------------------------------------------
# Each figure counts only the datasets the user may see (``ingestion.selectors.restrict``).


def dashboard_days(days: int = 14) -> list[date]:
    today = timezone.localdate()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def runs_per_day_by_status(user: Any, days: int = 14) -> dict[date, dict[str, int]]:
    """How many runs were created each day, by status (oldest day first)."""
    window = dashboard_days(days)
    counts: dict[date, dict[str, int]] = {d: {} for d in window}
    rows = (
        restrict(Run.objects.filter(created_at__date__gte=window[0]), user)
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        if row["day"] in counts:
            counts[row["day"]][row["status"]] = row["n"]
    return counts


def rows_per_day(user: Any, days: int = 14) -> dict[date, dict[str, int]]:
    """Rows loaded (inserted + updated) and rejected per day, by the day runs finished."""
    window = dashboard_days(days)
    totals: dict[date, dict[str, int]] = {d: {"loaded": 0, "rejected": 0} for d in window}
    rows = (
        restrict(Run.objects.filter(finished_at__date__gte=window[0]), user)
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


def datasets_with_last_run(user: Any) -> list[tuple[Dataset, Run | None]]:
    latest = Run.objects.filter(dataset=OuterRef("pk")).order_by("-created_at", "-id").values("pk")[:1]
    visible = restrict(Dataset.objects.all(), user, via=None)
    datasets = list(visible.annotate(last_run_id=Subquery(latest)).order_by("slug"))
    runs = Run.objects.in_bulk([d.last_run_id for d in datasets if d.last_run_id])
    return [(d, runs.get(d.last_run_id)) for d in datasets]


def runs_in_progress(user: Any) -> list[Run]:
    return list(
        restrict(Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]), user)
        .select_related("dataset")
        .order_by("created_at")[:50]
    )
