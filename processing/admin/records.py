"""Records: filter by dataset and run, search by key, data and lineage."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import Record
from .common import pretty_json


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ("key", "dataset", "last_run_link", "source_line", "schema", "updated_at")
    list_filter = ("dataset", ("last_run", admin.RelatedOnlyFieldListFilter))
    search_fields = ("=key",)
    show_full_result_count = False  # no COUNT(*) over millions of records
    list_select_related = ("dataset", "last_run", "schema")
    list_per_page = 100
    fields = ("dataset", "key", "data_pretty", "lineage", "content_hash", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="Data")
    def data_pretty(self, obj: Record) -> SafeString:
        return pretty_json(obj.data)

    @admin.display(description="Last run", ordering="last_run")
    def last_run_link(self, obj: Record) -> SafeString:
        return format_html(
            '<a href="{}">#{}</a>', reverse("admin:processing_run_change", args=[obj.last_run_id]), obj.last_run_id
        )

    @admin.display(description="Lineage")
    def lineage(self, obj: Record) -> SafeString:
        last = obj.last_run
        raw = last.raw_file
        return format_html(
            "Last written by run <a href='{}'>#{}</a> from file {} (<code>{}</code>), line {}, "
            "validated with schema v{}.<br>First loaded by run <a href='{}'>#{}</a>.",
            reverse("admin:processing_run_change", args=[last.pk]),
            last.pk,
            raw.original_name if raw else "—",
            raw.storage_name if raw else "—",
            obj.source_line,
            obj.schema.number,
            reverse("admin:processing_run_change", args=[obj.first_run_id]),
            obj.first_run_id,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Record | None = None) -> bool:
        return False
