"""HTTP sources: their configuration (the secret is write-only) and what a pull or push answers."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from ingestion.models import Source
from ingestion.services.sources import SOURCE_FIELDS
from ingestion.sourcekinds import COMMON_FIELDS, SCHEDULE_FIELDS, SECRET_FIELD, kind_fields, read_only_fields

from ..exceptions import django_validation_details
from .uploads import PreviewSerializer

# How this API names a kind's field where it differs: ``url`` is the source's own link here.
API_NAMES = {"url": ("endpoint",), SECRET_FIELD: (SECRET_FIELD, "has_secret")}


def _source_api_fields() -> list[str]:
    """The fields of a source in the API: the common ones, every kind's (ingestion.sourcekinds), the schedule."""
    # ``enabled`` comes after the schedule, where the API has always shown it.
    names = ["id", "url", *(name for name in COMMON_FIELDS if name != "enabled")]
    names += [api for name in kind_fields() for api in API_NAMES.get(name, (name,))]
    return [*names, *SCHEDULE_FIELDS, "enabled", "last_run", "pull_url", "created_at", "updated_at"]


class SourceSerializer(serializers.ModelSerializer):
    """An HTTP JSON API that a dataset pulls from. ``secret`` is accepted, never returned."""

    url = serializers.SerializerMethodField()
    dataset = serializers.SlugField(source="dataset.slug", help_text="The dataset the records go to.")
    endpoint = serializers.CharField(source="url", max_length=2000, help_text="http or https URL of the first page.")
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=4000,
        style={"input_type": "password"},
        help_text="Bearer token, API key or basic-auth password. Stored encrypted; omit it to keep the stored one, "
        "send an empty string to remove it.",
    )
    has_secret = serializers.BooleanField(read_only=True)
    params = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    headers = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    last_run = serializers.SerializerMethodField()
    pull_url = serializers.SerializerMethodField()

    class Meta:
        model = Source
        fields = _source_api_fields()
        read_only_fields = ["id", "has_secret", *read_only_fields(), "created_at", "updated_at"]
        # Uniqueness and cross-field rules are checked by the service, with the same messages as the admin.
        validators: list[Any] = []
        extra_kwargs: dict[str, dict[str, Any]] = {"name": {"validators": []}}

    def get_url(self, source: Source) -> str:
        return self.context["request"].build_absolute_uri(reverse("api:source-detail", kwargs={"pk": source.pk}))

    def get_pull_url(self, source: Source) -> str:
        return self.context["request"].build_absolute_uri(reverse("api:source-pull", kwargs={"pk": source.pk}))

    def get_last_run(self, source: Source) -> dict[str, Any] | None:
        run = source.runs.order_by("-created_at", "-id").first()
        if run is None:
            return None
        return {"id": run.pk, "status": run.status, "created_at": run.created_at, "error": run.error}

    def service_error(self, exc: DjangoValidationError) -> ValidationError:
        """The service's error with each model field named as the client sent it (``url`` -> ``endpoint``).

        ``url`` in this API is the source's own link; an error about the address it fetches
        belongs to ``endpoint``, the input field.
        """
        renamed = {
            field.source: name
            for name, field in self.fields.items()
            if not field.read_only and field.source not in ("*", name)
        }
        details = django_validation_details(exc)
        return ValidationError({renamed.get(key, key): messages for key, messages in details.items()})

    def service_data(self) -> tuple[dict[str, Any], str | None]:
        """The validated fields as the service takes them, and the secret (None: unchanged)."""
        data = dict(self.validated_data)
        secret = data.pop("secret", None)
        data.pop("dataset", None)
        return {k: v for k, v in data.items() if k in SOURCE_FIELDS}, secret


class PullPreviewSerializer(serializers.Serializer):
    """A dry-run pull: what was fetched and what loading it would do (nothing is kept)."""

    pull = serializers.DictField(help_text="records, pages, bytes, watermark, stopped")
    preview = PreviewSerializer()


class PushRowSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the row in the batch, from 0.")
    line = serializers.IntegerField(help_text="Line of the stored NDJSON file.")
    status = serializers.ChoiceField(choices=["accepted", "rejected"])
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)  # type: ignore[assignment]
