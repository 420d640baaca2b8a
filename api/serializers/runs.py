"""Runs, their progress and their rejected rows."""

from __future__ import annotations

from typing import Any, cast

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from processing.models import RejectedRow, Run
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

    name = serializers.CharField(source="original_name")
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    format = serializers.CharField(help_text="csv, or ndjson for pulled and pushed rows.")


class RunSerializer(serializers.ModelSerializer):
    """A run: one pass of the pipeline over one file. Poll it until ``finished`` is true."""

    dataset: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    started_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    progress = serializers.FloatField(help_text="Share of the file processed, 0 to 1.")
    finished = serializers.BooleanField(source="is_finished")
    file = RunFileSerializer(source="raw_file", allow_null=True)
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    source: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="name", read_only=True, allow_null=True, help_text="The HTTP source this run pulled, if any."
    )
    url = serializers.SerializerMethodField()
    rejected_rows_url = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id",
            "url",
            "dataset",
            "status",
            "finished",
            "progress",
            "error",
            "trigger",
            "source",
            "started_by",
            "forced",
            "parent",
            "noop_of",
            "cancel_requested",
            "attempts",
            "rows_read",
            "rows_valid",
            "rows_rejected",
            "rows_inserted",
            "rows_updated",
            "rows_unchanged",
            "bytes_total",
            "bytes_read",
            "file",
            "created_at",
            "started_at",
            "finished_at",
            "rejected_rows_url",
        ]
        read_only_fields = fields

    def get_url(self, run: Run) -> str:
        return run_url(self.context["request"], run.pk)

    def get_rejected_rows_url(self, run: Run) -> str:
        return self.context["request"].build_absolute_uri(reverse("api:run-rejected-rows", kwargs={"pk": run.pk}))


class RejectedRowBriefSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class RunDetailSerializer(RunSerializer):
    """A run with its summary (unknown columns, notes) and its first rejected rows."""

    summary = serializers.DictField()
    duration_seconds = serializers.SerializerMethodField()
    first_errors = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "summary", "duration_seconds", "first_errors"]
        read_only_fields = fields

    def get_duration_seconds(self, run: Run) -> float | None:
        if run.started_at and run.finished_at:
            return (run.finished_at - run.started_at).total_seconds()
        return None

    @extend_schema_field(RejectedRowBriefSerializer(many=True))
    def get_first_errors(self, run: Run) -> list[dict[str, Any]]:
        # many=True makes a ListSerializer, whose data is a list.
        return cast(list[dict[str, Any]], RejectedRowBriefSerializer(run_summary(run)["first_errors"], many=True).data)


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
