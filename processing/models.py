"""Runs of the pipeline, the records they load and the rows they reject."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from ingestion.models import Dataset, RawFile, SchemaVersion, Source


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.PARTIALLY_SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
)
LOADED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.PARTIALLY_SUCCEEDED)


class RunTrigger(models.TextChoices):
    COMMAND = "command"
    ADMIN = "admin"
    API = "api"
    SCHEDULE = "schedule"
    # Not a file: the check of the stored records when the schema changed (record_schema.py).
    SCHEMA_CHANGE = "schema_change"
    # Not a file: a time window of micro-batches read from a stream source (processing.services.streams).
    STREAM = "stream"


class Run(models.Model):
    """One pass of the pipeline over one raw file: the source of truth for a job.

    A run of an HTTP source first fetches its file (``raw_file`` is empty
    until then), then processes it like an upload.

    Counters and ``checkpoint`` are written in the same transaction as each
    chunk's rows, so they always describe what is committed.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="runs")
    raw_file = models.ForeignKey(RawFile, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    source = models.ForeignKey(
        Source,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="The HTTP source this run pulls from; its file exists once the pull has fetched it.",
    )
    schema = models.ForeignKey(SchemaVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="runs")
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.COMMAND)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    forced = models.BooleanField(default=False, help_text="Processed even though the same file loaded before.")
    noop_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The earlier run that already loaded this exact file.",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The run this one retries, replays or fixes.",
    )
    chunk_size = models.PositiveIntegerField(default=10_000)
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker has started this run.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The Run row is the outbox of its task: a queued run whose task was never
    # handed to the broker (it was down), or was handed over long ago and never
    # picked up (lost or discarded by a worker), is sent again by the reaper.
    enqueued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the run's task was last handed to the job queue; empty while that has not succeeded.",
    )
    enqueue_count = models.PositiveIntegerField(
        default=0, help_text="How many times the run's task was handed to the job queue."
    )
    cancel_requested = models.BooleanField(default=False)

    rows_read = models.BigIntegerField(default=0)
    rows_valid = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    rows_inserted = models.BigIntegerField(default=0)
    rows_updated = models.BigIntegerField(default=0)
    rows_unchanged = models.BigIntegerField(default=0)
    rows_fixed = models.BigIntegerField(
        default=0, help_text="Rejected rows later fixed and loaded by a linked run (they left quarantine)."
    )
    bytes_total = models.BigIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    checkpoint = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["dataset", "-created_at"], name="run_dataset_created")]
        permissions = [
            ("upload_file", "Can upload files and start runs"),
            ("operate_run", "Can retry, cancel and replay runs"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        """Share of the file processed, 0 to 1."""
        if self.status in FINISHED_STATUSES:
            return 1.0
        if not self.bytes_total:
            return 0.0
        return min(1.0, self.bytes_read / self.bytes_total)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class RejectedRow(models.Model):
    """A row that failed validation, kept with its raw values and the reasons."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="rejected_rows")
    line_number = models.PositiveIntegerField()
    raw = models.JSONField(help_text="The values as read, by header (or by position when headers are missing).")
    errors = models.JSONField(help_text="{field: [messages]}; '__row__' for problems with the whole row.")
    schema = models.ForeignKey(SchemaVersion, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Discarding takes a row out of quarantine without loading it; the row stays,
    # with who, when and why, so a discard can be told from a row never seen.
    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Database defaults: the pipeline COPYs new rows without naming these columns.
    discarded_by_name = models.CharField(
        max_length=150, blank=True, default="", db_default="", help_text="The username as it was."
    )
    discard_reason = models.TextField(blank=True, default="", db_default="")
    # The broker's id of the message this row came in (stream sources), empty for files.
    message_id = models.CharField(max_length=100, blank=True, default="", db_default="")

    class Meta:
        ordering = ["run", "line_number"]
        indexes = [models.Index(fields=["run", "line_number"], name="rejected_run_line")]

    def __str__(self) -> str:
        return f"run {self.run_id} line {self.line_number}"

    @property
    def is_discarded(self) -> bool:
        return self.discarded_at is not None


class RunQuality(models.Model):
    """A run's data quality: the profile of its valid rows and the results of its schema's checks.

    Written once, in the transaction that records the run's end
    (``processing.pipeline.quality``); kept apart from ``Run`` so that lists of
    runs do not read profiles.
    """

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="quality")
    profile = models.JSONField(
        null=True, blank=True, help_text="Per-field statistics of the run's valid rows (docs/quality.md)."
    )
    checks = models.JSONField(default=list, blank=True, help_text="Results of the schema's declared checks.")
    anomalies = models.JSONField(
        default=list, blank=True, help_text="Figures far from the dataset's recent successful runs (docs/quality.md)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "run qualities"

    def __str__(self) -> str:
        return f"quality of run {self.run_id}"

    @property
    def failed_checks(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if c.get("status") == "failed"]


class StreamMessage(models.Model):
    """A message of a stream source whose batch committed: the record it loaded, or that it was rejected.

    Written in the transaction that loads its batch, before the broker is
    acknowledged, so a message delivered again after a crash is recognised
    and changes nothing. ``order`` sorts messages as the stream does; a
    record is only overwritten by a later message for its key, whichever
    consumer delivers first. Rows older than every message the broker
    could still deliver are pruned (``processing.services.streams``).
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="+")
    message_id = models.CharField(max_length=100)
    order = models.CharField(max_length=48, help_text="The message's place in the stream, as sortable text.")
    key = models.CharField(max_length=1000, blank=True, help_text="The record's key; empty for a rejected message.")
    run = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "message_id"], name="stream_message_once")]
        indexes = [
            models.Index(fields=["source", "key", "order"], name="stream_message_key"),
            models.Index(fields=["source", "order"], name="stream_message_order"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.message_id}"
