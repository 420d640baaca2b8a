"""Records: the validated values of one row by natural key, with lineage."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from rest_framework import serializers

from processing.models import Run
from processing.record_queries import RecordRow, utc_text_moment


def record_url(request: Any, slug: str, key: str) -> str:
    return request.build_absolute_uri(reverse("api:record-detail", kwargs={"slug": slug, "key": key}))


@lru_cache(maxsize=1024)
def _record_path(script_prefix: str, urlconf: str, slug: str, key: str) -> str:
    """``reverse`` of a record's URL, once per script prefix, URLconf and dataset (what its result depends on)."""
    return reverse("api:record-detail", kwargs={"slug": slug, "key": key}, urlconf=urlconf)


def run_url(request: Any, run_id: int) -> str:
    return request.build_absolute_uri(reverse("api:run-detail", kwargs={"pk": run_id}))


class RecordSerializer(serializers.Serializer):
    """A record in a list: its values under ``data``, typed as in docs/schema.md."""

    key = serializers.CharField(read_only=True, help_text="The natural key.")
    # API field named like a Serializer attribute; DRF's metaclass moves declared fields off the class
    data = serializers.DictField(help_text="The values by field name, as stored (see the dataset's openapi.json).")  # type: ignore[assignment]
    schema_version = serializers.IntegerField(source="schema_number")
    first_run = serializers.IntegerField(source="first_run_id")
    last_run = serializers.IntegerField(source="last_run_id", help_text="The run that last wrote these values.")
    source_line = serializers.IntegerField(help_text="Line of the last file where this record starts.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    url = serializers.SerializerMethodField()

    class Meta:
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

    def get_url(self, record: Any) -> str:
        return record_url(self.context["request"], self.context["dataset"].slug, record.key)


# What ``reverse`` leaves unquoted in a path (django.urls.resolvers).
_PATH_SAFE = "!$&'()*+,;=" + "/~:@"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class RecordPageWriter:
    """``RecordSerializer(rows, many=True)`` rendered as JSON text, without the per-field machinery.

    A list page is most of the API's traffic. Each record's ``data`` is the
    JSON text read from the database, passed through as it is (the same
    values; only the spacing may differ from a re-encoding), and each
    record's ``url`` is the page's one reversed URL with the key put in.
    tests/api/test_records_page_writer.py holds it to RecordSerializer's output.
    """

    def __init__(self, request: Any, slug: str) -> None:
        self.request = request
        self.slug = slug
        # The key may hold anything but NUL (the pipeline rejects it), so a
        # NUL stands in for it: reversed once, split around its quoted form.
        urlconf = get_urlconf() or settings.ROOT_URLCONF
        placeholder = request.build_absolute_uri(_record_path(get_script_prefix(), urlconf, slug, "\x00"))
        self.head, _, self.tail = placeholder.rpartition("%00")
        self.timezone = timezone.get_current_timezone()
        self.utc = getattr(self.timezone, "key", None) in ("UTC", "Etc/UTC")

    def url(self, key: str) -> str:
        # head and tail come from build_absolute_uri(), which already applied
        # iri_to_uri(); the quoted key holds only characters iri_to_uri()
        # leaves alone, so the whole is what iri_to_uri() would give.
        location = self.head + quote(key, safe=_PATH_SAFE) + self.tail
        if "/./" in location or "/../" in location:
            # build_absolute_uri() resolves dot segments: leave those to it.
            return record_url(self.request, self.slug, key)
        return location

    def moment(self, value: datetime) -> str:
        """As DRF's DateTimeField renders it with DATETIME_FORMAT = iso-8601."""
        text = value.astimezone(self.timezone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def moment_text(self, text: str) -> str:
        """``moment`` of a UTC timestamp read as ``YYYY-MM-DDTHH:MM:SS.ffffff``, without parsing it when it can."""
        if self.utc and len(text) == 26 and text[10] == "T":
            # isoformat() leaves out a zero fraction.
            return (text[:19] if text.endswith(".000000") else text) + "Z"
        return self.moment(utc_text_moment(text))

    def record(self, row: RecordRow) -> str:
        created = self.moment_text(row.created_text)
        updated = self.moment_text(row.updated_text)
        return (
            f'{{"key":{_dumps(row.key)},"data":{row.data_json},"schema_version":{int(row.schema_number)},'
            f'"first_run":{int(row.first_run_id)},"last_run":{int(row.last_run_id)},'
            f'"source_line":{int(row.source_line)},"created_at":"{created}",'
            f'"updated_at":"{updated}","url":{_dumps(self.url(row.key))}}}'
        )

    def page(self, rows: Sequence[RecordRow], *, next_url: str | None, previous_url: str | None) -> bytes:
        """``{"next", "previous", "results"}`` as DRF's JSONRenderer would give it (UTF-8)."""
        results = ",".join(self.record(row) for row in rows)
        text = f'{{"next":{_dumps(next_url)},"previous":{_dumps(previous_url)},"results":[{results}]}}'
        # JSONRenderer escapes these two for JavaScript; data_json may hold them raw.
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


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
        return run.raw_file.original_name if run.raw_file is not None else None

    def get_file_sha256(self, run: Run) -> str | None:
        return run.raw_file.sha256 if run.raw_file is not None else None

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
