"""Upload options and the dry-run preview."""

from __future__ import annotations

from rest_framework import serializers

from core.encodings import encoding_require
from processing.models import RunStatus

from .runs import DialectFieldsSerializer


class UploadOptionsSerializer(serializers.Serializer):
    """Query parameters of an upload."""

    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Validate the whole file and report; keep nothing."
    )
    force = serializers.BooleanField(
        required=False, default=False, help_text="Process the file even if the same bytes were loaded before."
    )
    encoding = serializers.CharField(
        required=False, max_length=40, help_text="Override encoding detection, e.g. cp1252."
    )
    delimiter = serializers.CharField(
        required=False, min_length=1, max_length=1, trim_whitespace=False, help_text="Override the delimiter."
    )

    def validate_encoding(self, value: str) -> str:
        # The one list of text encodings (core.encodings): the CLI and schemas accept the same names.
        try:
            return encoding_require(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class UploadFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The CSV file.")


class PreviewRejectedRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]
    raw = serializers.DictField()


class PreviewColumnSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True)
    type = serializers.CharField(allow_null=True)
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    required = serializers.BooleanField()  # type: ignore[assignment]
    header = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="mapped, missing (required), absent (optional) or unknown.")


class PreviewSerializer(DialectFieldsSerializer):
    """What ingesting the file would do: exact counts, the first rejected rows; nothing is kept."""

    status = serializers.ChoiceField(choices=RunStatus.choices)
    error = serializers.CharField(allow_blank=True)
    rows_read = serializers.IntegerField()
    valid = serializers.IntegerField()
    rejected = serializers.IntegerField()
    inserted = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    summary = serializers.DictField()
    rejected_rows = PreviewRejectedRowSerializer(many=True)
    noop_of = serializers.IntegerField(allow_null=True, help_text="The run that already loaded this exact file.")
    columns = PreviewColumnSerializer(many=True, required=False, help_text="How the header maps to the schema.")
