"""Admin for datasets, schema versions and raw files."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from .models import Dataset, RawFile, SchemaField, SchemaVersion


class SchemaFieldInline(admin.TabularInline):
    model = SchemaField
    fields = ("position", "name", "type", "required", "source", "aliases", "transforms", "constraints", "options")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("position",)

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False  # versions are immutable; apply a schema file to change fields


class SchemaVersionInline(admin.TabularInline):
    model = SchemaVersion
    fields = ("number", "checksum", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "key_fields", "current_schema", "reject_threshold", "updated_at")
    search_fields = ("slug", "name")
    readonly_fields = ("current_schema", "key_fields", "created_at", "updated_at")
    fields = ("slug", "name", "description", "key_fields", "delimiter", "reject_threshold", "current_schema")
    inlines = [SchemaVersionInline]


@admin.register(SchemaVersion)
class SchemaVersionAdmin(admin.ModelAdmin):
    list_display = ("dataset", "number", "created_at", "created_by")
    list_filter = ("dataset",)
    readonly_fields = ("dataset", "number", "checksum", "created_at", "created_by", "schema_file")
    exclude = ("definition",)
    inlines = [SchemaFieldInline]

    @admin.display(description="Schema file")
    def schema_file(self, obj: SchemaVersion) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.definition, indent=2, ensure_ascii=False))

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(RawFile)
class RawFileAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "original_name", "size", "encoding", "delimiter", "state", "created_at")
    list_filter = ("dataset", "state", "encoding")
    search_fields = ("original_name", "sha256")
    readonly_fields = [f.name for f in RawFile._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
