"""Admin for runs, records and rejected rows."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from .models import Record, RejectedRow, Run


def _pretty(value: object) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "dataset",
        "status",
        "trigger",
        "started_by",
        "rows_read",
        "rows_valid",
        "rows_rejected",
        "rows_inserted",
        "rows_updated",
        "rows_unchanged",
        "created_at",
    )
    list_filter = ("status", "trigger", "dataset")
    readonly_fields = [f.name for f in Run._meta.fields if f.name not in ("summary", "checkpoint")] + ["summary_pretty"]
    exclude = ("summary", "checkpoint")

    @admin.display(description="Summary")
    def summary_pretty(self, obj: Run) -> str:
        return _pretty(obj.summary)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ("key", "dataset", "last_run", "source_line", "schema", "updated_at")
    list_filter = ("dataset",)
    search_fields = ("key",)
    show_full_result_count = False
    list_select_related = ("dataset", "last_run", "schema")
    readonly_fields = [f.name for f in Record._meta.fields if f.name != "data"] + ["data_pretty"]
    exclude = ("data",)

    @admin.display(description="Data")
    def data_pretty(self, obj: Record) -> str:
        return _pretty(obj.data)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(RejectedRow)
class RejectedRowAdmin(admin.ModelAdmin):
    list_display = ("run", "line_number", "errors_text")
    list_filter = ("run__dataset",)
    readonly_fields = ("run", "line_number", "schema", "errors_pretty", "raw_pretty")
    exclude = ("raw", "errors")

    @admin.display(description="Errors")
    def errors_text(self, obj: RejectedRow) -> str:
        return "; ".join(f"{f}: {', '.join(m)}" for f, m in obj.errors.items())

    @admin.display(description="Errors")
    def errors_pretty(self, obj: RejectedRow) -> str:
        return _pretty(obj.errors)

    @admin.display(description="Raw values")
    def raw_pretty(self, obj: RejectedRow) -> str:
        return _pretty(obj.raw)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
