"""A run's quality, from its first chunk to its end: ``RunQualityTracker``.

The pipeline's driver (``run.py``) makes one per run and calls it at three
points: ``gate`` before the first chunk loads, ``merge`` for each chunk it
loads, and ``ended`` (wrapped around the run's end) to store the profile and
the check results in the transaction that records the run's final status.

**Error-severity checks decide before anything is committed.** A run
commits chunk by chunk (each chunk's records, rejected rows and checkpoint
together), so a check on the whole run (its row count, a null share) can
only be decided once every row was seen. Rather than holding one
transaction open for the whole run, which would keep its heartbeat
invisible to the reaper, and on SQLite lock every other writer out for as
long, a dataset whose schema declares an ``error`` check has each file
read and validated once first, without touching the database (``gate``):
that pass profiles the file and decides the error checks. A failing check
fails the run before its first chunk loads: nothing of it is stored, its
file is kept (archived) and ``retry`` reads it again, under the checks as
they are then. A passing run then loads as usual, and the first pass's
profile is its profile. The price is a second validation pass, and only for
datasets that declare error checks; a resumed run (one that loaded chunks
before it was interrupted) already passed its gate and is not gated again.

``warn`` checks are decided at the end, on the run's profile and counters,
and notify (``processing.notifications``): one message per run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ingestion.models import RawFile, SchemaVersion
from ingestion.reader import reader_open
from ingestion.schema import CheckSpec, SchemaSpec, checks_of_definition
from ingestion.storage import data_storage

from ..models import LOADED_STATUSES, Run, RunQuality, RunStatus
from ..quality.anomalies import WINDOW, anomalies_detect
from ..quality.checks import CheckContext, checks_evaluate, checks_message
from ..quality.profile import ChunkProfile, RunProfile
from .chunks import ValidatedChunks
from .validate import RowValidator

__all__ = ["RunQualityTracker", "run_quality_store"]

logger = logging.getLogger(__name__)


def _current_checks(run: Run) -> tuple[CheckSpec, ...]:
    """The checks of the run's schema version as stored now (changing checks keeps the version)."""
    if run.schema_id is None:
        return ()
    definition = SchemaVersion.objects.filter(pk=run.schema_id).values_list("definition", flat=True).first()
    return checks_of_definition(definition) if definition else ()


def _hours_since_last_load(run: Run) -> float | None:
    previous = (
        Run.objects.filter(dataset_id=run.dataset_id, status__in=LOADED_STATUSES, finished_at__isnull=False)
        .exclude(pk=run.pk)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    if previous is None:
        return None
    return (timezone.now() - previous).total_seconds() / 3600


class RunQualityTracker:
    """Profiles a run's chunks, decides its checks and stores both with the run's end."""

    def __init__(self, run: Run, schema: SchemaSpec) -> None:
        self.run = run
        self.schema = schema
        self.checks = _current_checks(run)
        self.profile = RunProfile(schema)
        self.resumed = int(run.checkpoint.get("rows", 0)) > 0
        if self.resumed:
            self.profile.partial_from_line = int(run.checkpoint.get("line", 0)) + 1
        # Whether the main pass profiles its chunks (not when the gate already did).
        self.profiling: bool = settings.DATAFLOW["PROFILE"]
        self.gate_results: list[dict[str, Any]] | None = None

    # --- Before the first chunk ---------------------------------------------------------

    def gate(self, validator: RowValidator, header: Sequence[str]) -> tuple[str, str] | None:
        """Decide the error checks on a first pass over the file; ``(status, reason)`` to stop the run.

        None when the run may load (no error check, a resumed run, or every error check passed).
        """
        errors = [c for c in self.checks if c.severity == "error"]
        if not errors or self.resumed:
            return None
        run = self.run
        raw_file: RawFile | None = run.raw_file
        assert raw_file is not None  # the pipeline runs on a run's file
        with data_storage().open(raw_file.storage_name, "rb") as fh:
            reader = reader_open(fh, format=raw_file.format, encoding=raw_file.encoding, delimiter=raw_file.delimiter)
            if not reader.read_header():
                reader.header = list(header)  # an NDJSON file with no key: as the pipeline reads it
            with ValidatedChunks(reader, validator, None, run.chunk_size, profile=True) as chunks:
                for result in chunks:
                    self.profile.merge(result.profile)
                    # A long first pass still shows its worker alive, and can be cancelled.
                    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
                    if Run.objects.filter(pk=run.pk, cancel_requested=True).exists():
                        return RunStatus.CANCELLED, "cancelled on request"
        self.profiling = False  # the first pass's profile is the run's
        context = CheckContext(rows=self.profile.rows, profile=self.profile.to_json())
        self.gate_results = [{**r, "decided": "before loading"} for r in checks_evaluate(errors, context)]
        failed = checks_message(self.gate_results)
        if failed:
            return RunStatus.FAILED, f"failed data-quality checks, nothing loaded: {failed}"
        return None

    # --- Each loaded chunk --------------------------------------------------------------

    def merge(self, chunk: ChunkProfile | None) -> None:
        if self.profiling:
            self.profile.merge(chunk)

    # --- The end ------------------------------------------------------------------------

    def results(self, run: Run, status: str) -> list[dict[str, Any]]:
        """Every check's result: error checks as the gate decided them, the others on the finished run."""
        profiled = self.profiling or self.gate_results is not None
        profile = self.profile.to_json() if profiled else None
        decided = list(self.gate_results or [])
        rest = [c for c in self.checks if self.gate_results is None or c.severity != "error"]
        if status in LOADED_STATUSES and rest:
            context = CheckContext(
                rows=run.rows_valid, profile=profile, hours_since_last_load=_hours_since_last_load(run)
            )
            decided += [{**r, "decided": "at the end"} for r in checks_evaluate(rest, context)]
        return decided

    def ended(self, end: Any) -> Any:
        """Wrap the run's end (``RunEnd``) so that the quality row is stored in its transaction."""

        def end_with_quality(
            run: Run, status: str, *, error: str = "", dry_run: bool = False, crashed: bool = False
        ) -> None:
            if dry_run or crashed:
                end(run, status, error=error, dry_run=dry_run, crashed=crashed)
                return
            with transaction.atomic():
                profiled = self.profiling or self.gate_results is not None
                profile = self.profile.to_json() if profiled else None
                anomalies = _anomalies(run, profile) if status in LOADED_STATUSES and profile is not None else []
                run_quality_store(run=run, profile=profile, checks=self.results(run, status), anomalies=anomalies)
                end(run, status, error=error, dry_run=dry_run, crashed=crashed)

        return end_with_quality


def _anomalies(run: Run, profile: dict[str, Any]) -> list[dict[str, Any]]:
    """The run against the dataset's last successful, profiled runs (``quality.anomalies``)."""
    earlier = (
        RunQuality.objects.filter(
            run__dataset_id=run.dataset_id, run__status__in=LOADED_STATUSES, profile__isnull=False
        )
        .exclude(run_id=run.pk)
        .order_by("-run__finished_at", "-run_id")
        .values("run__rows_valid", "run__rows_rejected", "run__rows_read", "profile")[:WINDOW]
    )
    history = [
        {
            "rows": e["run__rows_valid"],
            "rejected": e["run__rows_rejected"],
            "read": e["run__rows_read"],
            "profile": e["profile"],
        }
        for e in earlier
    ]
    current = {"rows": run.rows_valid, "rejected": run.rows_rejected, "read": run.rows_read, "profile": profile}
    return anomalies_detect(current, history)


def run_quality_store(
    *,
    run: Run,
    profile: dict[str, Any] | None,
    checks: list[dict[str, Any]],
    anomalies: list[dict[str, Any]] | None = None,
) -> RunQuality:
    """Store (or replace, for a run resumed and ended again) a run's profile, check results and anomalies."""
    quality, _ = RunQuality.objects.update_or_create(
        run=run, defaults={"profile": profile, "checks": checks, "anomalies": anomalies or []}
    )
    return quality
