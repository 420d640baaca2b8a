"""Datasets, in and out in the schema-file format of docs/schema.md.

A document read from the API can be sent back as is: the read-only keys it
carries (``schema_version``, ``role``, ``url``…) are ignored on input, and
everything else goes through ``ingestion.schema.schema_parse``, which
reports every problem at once.
"""

from __future__ import annotations

from typing import Any, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ingestion.models import Dataset, DatasetRole, FieldType
from ingestion.schema import TRANSFORMS, SchemaSpec, schema_parse
from ingestion.selectors import schema_spec

# Database column limits that the schema file itself does not state.
MAX_NAME_LENGTH = cast(int, Dataset._meta.get_field("name").max_length)  # a CharField: max_length is set
MAX_SOURCE_LENGTH = 200


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string"}], "description": "number or ISO 8601 text"})
class BoundField(serializers.JSONField):
    pass


class SchemaFieldSerializer(serializers.Serializer):
    """One field of a schema file; keys that do not apply to its type are errors."""

    name = serializers.CharField(max_length=63)
    type = serializers.ChoiceField(choices=FieldType.choices, required=False)
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    required = serializers.BooleanField(required=False)  # type: ignore[assignment]
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    source = serializers.CharField(required=False, max_length=MAX_SOURCE_LENGTH)  # type: ignore[assignment]
    aliases = serializers.ListField(child=serializers.CharField(), required=False)
    transforms = serializers.ListField(child=serializers.ChoiceField(choices=TRANSFORMS), required=False)
    null_values = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    min = BoundField(required=False)
    max = BoundField(required=False)
    min_length = serializers.IntegerField(required=False, min_value=0)
    max_length = serializers.IntegerField(required=False, min_value=0)
    pattern = serializers.CharField(required=False)
    choices = serializers.ListField(child=serializers.JSONField(), required=False)
    unique = serializers.BooleanField(required=False)
    thousands_separator = serializers.CharField(required=False, max_length=1, trim_whitespace=False)
    decimal_separator = serializers.CharField(required=False, max_length=1, trim_whitespace=False)
    default_timezone = serializers.CharField(required=False)
    formats = serializers.ListField(child=serializers.CharField(), required=False)
    indexed = serializers.BooleanField(
        required=False, help_text="Index the field for record filters (PostgreSQL); see docs/schema.md."
    )


class DatasetLinksSerializer(serializers.Serializer):
    records = serializers.URLField()
    uploads = serializers.URLField()
    runs = serializers.URLField()
    export = serializers.URLField()
    openapi = serializers.URLField()
    grants = serializers.URLField()


class DatasetSerializer(serializers.Serializer):
    """A dataset as a schema file, plus read-only facts about it.

    Input is parsed into a ``SchemaSpec`` (``validated_data``).
    """

    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    key = serializers.ListField(child=serializers.CharField(), min_length=1)
    delimiter = serializers.CharField(required=False, allow_blank=True, max_length=1, trim_whitespace=False)
    reject_threshold = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    fields = SchemaFieldSerializer(many=True)  # type: ignore[assignment]
    schema_version = serializers.IntegerField(read_only=True, allow_null=True)
    role = serializers.ChoiceField(choices=DatasetRole.choices, read_only=True)
    url = serializers.URLField(read_only=True)
    links = DatasetLinksSerializer(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    READ_ONLY_KEYS = ("schema_version", "role", "url", "links", "created_at", "updated_at")

    def to_representation(self, dataset: Dataset) -> dict[str, Any]:
        request = self.context["request"]
        roles: dict[int, str] = self.context.get("roles", {})
        version = dataset.current_schema
        spec = schema_spec(version) if version is not None else None

        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(f"api:{name}", kwargs={"slug": dataset.slug}))

        runs = request.build_absolute_uri(reverse("api:run-list")) + f"?dataset={dataset.slug}"
        return {
            "slug": dataset.slug,
            "name": dataset.name,
            "description": dataset.description,
            "key": list(dataset.key_fields),
            "delimiter": dataset.delimiter,
            "reject_threshold": dataset.reject_threshold,
            "fields": spec.field_definitions() if spec else [],
            "schema_version": version.number if version is not None else None,
            "role": roles.get(dataset.pk),
            "url": url("dataset-detail"),
            "links": {
                "records": url("record-list"),
                "uploads": url("dataset-uploads"),
                "runs": runs,
                "export": url("dataset-export"),
                "openapi": url("dataset-openapi"),
                "grants": url("grant-list"),
            },
            "created_at": serializers.DateTimeField().to_representation(dataset.created_at),
            "updated_at": serializers.DateTimeField().to_representation(dataset.updated_at),
        }

    def to_internal_value(self, data: Any) -> SchemaSpec:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object: a schema file."]})
        document = {k: v for k, v in data.items() if k not in self.READ_ONLY_KEYS}
        errors: dict[str, list[str]] = {}
        name = document.get("name")
        if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
            errors["name"] = [f"must be at most {MAX_NAME_LENGTH} characters long"]
        fields = document.get("fields")
        if isinstance(fields, list):
            for i, field in enumerate(fields):
                source = field.get("source") if isinstance(field, dict) else None
                if isinstance(source, str) and len(source) > MAX_SOURCE_LENGTH:
                    errors.setdefault("fields", []).append(
                        f"fields[{i}]: 'source' must be at most {MAX_SOURCE_LENGTH} characters long"
                    )
        try:
            spec = schema_parse(document)
        except DjangoValidationError as exc:
            errors["schema"] = [str(m) for m in exc.messages]
            spec = None
        if errors or spec is None:
            raise serializers.ValidationError(errors)
        return spec
