"""Runs, their progress and their rejected rows."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from processing.models import RejectedRow, Run, RunStatus, RunTrigger
from processing.selectors import run_summary

from .records import run_url


class DialectFieldsSerializer(serializers.Serializer):
    """How a file is read and where each choice came from (shared by runs' files and previews)."""

    encoding = serializers.CharField(help_text="Empty when it could not be decided (see encoding_candidates).")
    encoding_source = serializers.CharField(
        source="dialect.encoding_source",
        help_text="exact (valid UTF-8, or a byte-order mark), given (with the upload), declared (by the "
        "dataset), detected, damaged (UTF-8 with invalid bytes: those rows are rejected) or unsure.",
    )
    encoding_confidence = serializers.FloatField(
        source="dialect.encoding_confidence", allow_null=True, help_text="For a detected encoding: 0 to 1."
    )
    encoding_candidates = serializers.ListField(
        source="dialect.encoding_candidates",
        child=serializers.CharField(),
        help_text="When the encoding is unsure: what the file could be; declare one with ?encoding=.",
    )
    encoding_text = serializers.CharField(
        source="dialect.encoding_text", help_text='For people, e.g. "cp1251 (detected with confidence 96%)".'
    )
    delimiter = serializers.CharField(help_text="Empty for NDJSON files.")
    delimiter_source = serializers.CharField(
        source="dialect.delimiter_source", help_text="given (with the upload), declared (by the dataset) or detected."
    )
    delimiter_text = serializers.CharField(source="dialect.delimiter_text")


class RunFileSerializer(DialectFieldsSerializer):
    """The file a run reads: stored under a server-generated name; ``name`` is what the client sent."""

    name = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    format = serializers.CharField(help_text="csv, or ndjson for pulled and pushed rows.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # The run summary holds the dialect flat beside the name (``run_file_summary``),
        # so every field reads its own key rather than the file's ``dialect()``.
        fields = super().get_fields()
        for field in fields.values():
            field.source = None
        return fields


class RunSerializer(serializers.Serializer):
    """A run: one pass of the pipeline over one file. Poll it until ``finished`` is true.

    Renders ``processing.selectors.run_summary``, the one shape of a run that
    ``run_status --json``, the console and notifications show too; only the
    links are the API's own.
    """

    summary_detail = False

    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    dataset = serializers.CharField(help_text="The dataset's slug.")
    status = serializers.ChoiceField(choices=RunStatus.choices)
    finished = serializers.BooleanField()
    progress = serializers.FloatField(help_text="Share of the file processed, 0 to 1.")
    error = serializers.CharField(allow_blank=True)
    trigger = serializers.ChoiceField(choices=RunTrigger.choices)
    # API fields named like Serializer attributes; DRF's metaclass moves declared fields off the class.
    source = serializers.CharField(  # type: ignore[assignment]
        allow_null=True, help_text="The HTTP source this run pulled, if any."
    )
    started_by = serializers.CharField(allow_null=True, help_text="The username of who started it.")
    forced = serializers.BooleanField()
    parent = serializers.IntegerField(  # type: ignore[assignment]
        allow_null=True, help_text="The run this one retries, replays or fixes."
    )
    noop_of = serializers.IntegerField(allow_null=True, help_text="The earlier run that already loaded these bytes.")
    cancel_requested = serializers.BooleanField()
    attempts = serializers.IntegerField()
    enqueued_at = serializers.DateTimeField(
        allow_null=True, help_text="When its task last reached the job queue (empty: not yet; the reaper resends it)."
    )
    enqueue_count = serializers.IntegerField(help_text="How many times its task was sent to the job queue.")
    rows_read = serializers.IntegerField()
    rows_valid = serializers.IntegerField()
    rows_rejected = serializers.IntegerField()
    rows_inserted = serializers.IntegerField()
    rows_updated = serializers.IntegerField()
    rows_unchanged = serializers.IntegerField()
    bytes_total = serializers.IntegerField()
    bytes_read = serializers.IntegerField()
    file = RunFileSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    rejected_rows_url = serializers.SerializerMethodField()

    def to_representation(self, instance: Run) -> dict[str, Any]:
        return super().to_representation(run_summary(instance, detail=self.summary_detail))

    def get_url(self, summary: dict[str, Any]) -> str:
        return run_url(self.context["request"], summary["id"])

    def get_rejected_rows_url(self, summary: dict[str, Any]) -> str:
        return self.context["request"].build_absolute_uri(
            reverse("api:run-rejected-rows", kwargs={"pk": summary["id"]})
        )


class RejectedRowBriefSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class RunDetailSerializer(RunSerializer):
    """A run with its summary (unknown columns, notes) and its first rejected rows."""

    summary_detail = True

    summary = serializers.DictField()
    duration_seconds = serializers.FloatField(allow_null=True)
    first_errors = RejectedRowBriefSerializer(many=True)
    checks = serializers.ListField(
        child=serializers.DictField(), help_text="Results of the schema's declared checks (docs/quality.md)."
    )
    anomalies = serializers.ListField(
        child=serializers.DictField(), help_text="Figures far from the dataset's recent runs (docs/quality.md)."
    )


class RejectedRowSerializer(serializers.ModelSerializer):
    """A row that failed validation: its raw values by header and one list of messages per failing field."""

    raw = serializers.DictField(help_text="Values as read, by header; extra values under `__extra__`.")
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="{field: [messages]}; `__row__` for problems with the whole row.",
    )
    schema_version = serializers.IntegerField(source="schema_number")

    class Meta:
        model = RejectedRow
        fields = ["line_number", "errors", "raw", "schema_version"]
        read_only_fields = fields
