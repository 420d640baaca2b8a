"""Records: the validated values of one row by natural key, with lineage."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from processing.models import Record, Run


def record_url(request: Any, slug: str, key: str) -> str:
    return request.build_absolute_uri(reverse("api:record-detail", kwargs={"slug": slug, "key": key}))


def run_url(request: Any, run_id: int) -> str:
    return request.build_absolute_uri(reverse("api:run-detail", kwargs={"pk": run_id}))


class RecordSerializer(serializers.ModelSerializer):
    """A record in a list: its values under ``data``, typed as in docs/schema.md."""

    data = serializers.DictField(help_text="The values by field name, as stored (see the dataset's openapi.json).")
    schema_version = serializers.IntegerField(source="schema_number")
    first_run = serializers.IntegerField(source="first_run_id")
    last_run = serializers.IntegerField(source="last_run_id", help_text="The run that last wrote these values.")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Record
        fields = [
            "key",
            "data",
            "schema_version",
            "first_run",
            "last_run",
            "source_line",
            "created_at",
            "updated_at",
            "url",
        ]
        read_only_fields = fields

    def get_url(self, record: Record) -> str:
        return record_url(self.context["request"], self.context["dataset"].slug, record.key)


class LineageRunSerializer(serializers.ModelSerializer):
    """A run in a record's lineage, with the file it read."""

    id = serializers.IntegerField()
    file_name = serializers.SerializerMethodField()
    file_sha256 = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = ["id", "status", "trigger", "created_at", "finished_at", "file_name", "file_sha256", "url"]
        read_only_fields = fields

    def get_file_name(self, run: Run) -> str | None:
        return run.raw_file.original_name if run.raw_file_id else None

    def get_file_sha256(self, run: Run) -> str | None:
        return run.raw_file.sha256 if run.raw_file_id else None

    def get_url(self, run: Run) -> str:
        return run_url(self.context["request"], run.pk)


class LineageSerializer(serializers.Serializer):
    first_run = LineageRunSerializer(help_text="The run that created the record.")
    last_run = LineageRunSerializer(help_text="The run that last changed its values.")
    source_line = serializers.IntegerField(help_text="Line of the last run's file where the row starts.")
    schema_version = serializers.IntegerField(source="schema_number")


class RecordDetailSerializer(RecordSerializer):
    """One record with its lineage: which runs and file lines its values came from."""

    lineage = LineageSerializer(source="*", read_only=True)

    class Meta(RecordSerializer.Meta):
        fields = [*RecordSerializer.Meta.fields, "lineage"]
        read_only_fields = fields
