"""What a schema change does to a dataset's stored records (``?dry_run=true`` previews, applied changes report)."""

from __future__ import annotations

from rest_framework import serializers


class RecordFailureSerializer(serializers.Serializer):
    key = serializers.CharField()
    source_line = serializers.IntegerField(help_text="Line of the last file where the record starts.")
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), help_text="{field: [messages]}"
    )


class SchemaChangePreviewSerializer(serializers.Serializer):
    """``?dry_run=true``: the stored records checked against the new schema; nothing was changed."""

    dry_run = serializers.BooleanField()
    records_checked = serializers.IntegerField()
    records_failing = serializers.IntegerField(help_text="Records that would be quarantined.")
    failures = RecordFailureSerializer(many=True, help_text="The first failing records (at most 20).")
    columns_added = serializers.ListField(child=serializers.CharField())
    columns_dropped = serializers.ListField(child=serializers.CharField())
    columns_converted = serializers.ListField(child=serializers.CharField())


class SchemaChangeSerializer(serializers.Serializer):
    """What applying a new schema version did to the stored records."""

    records_checked = serializers.IntegerField()
    records_quarantined = serializers.IntegerField(help_text="Records moved into quarantine as rejected rows.")
    run_id = serializers.IntegerField(
        allow_null=True, help_text="The schema-change run whose rejected rows hold them (fix them there)."
    )
    columns_added = serializers.ListField(child=serializers.CharField())
    columns_dropped = serializers.ListField(child=serializers.CharField())
    columns_converted = serializers.ListField(child=serializers.CharField())
