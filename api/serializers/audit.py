"""Audit events, as managers read them."""

from __future__ import annotations

from rest_framework import serializers

from ingestion.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)
    dataset = serializers.CharField(source="dataset_slug", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor", "action", "dataset", "object_type", "object_id", "details", "ip"]
        read_only_fields = fields
