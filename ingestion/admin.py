"""Admin for datasets (schema import/export, versions, grants) and raw files."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ingestion.services.datasets import (
    DATASET_NOTIFICATION_FIELDS,
    DatasetApplyResult,
    dataset_apply,
    dataset_apply_preview,
    dataset_create,
    dataset_delete,
    dataset_notifications_set,
    notify_emails_clean,
    notify_webhooks_clean,
)
from ingestion.services.grants import (
    dataset_grant_delete,
    dataset_grant_set,
    dataset_grantee_check,
    dataset_grants_check,
)

from .models import AuditEvent, Dataset, DatasetAction, DatasetGrant, DatasetRole, RawFile, SchemaField, SchemaVersion
from .schema import MAX_SCHEMA_SIZE, SchemaSpec, schema_loads
from .schema_admin import SchemaEditViews, schema_apply_messages, version_diff_html
from .selectors import action_role, dataset_may, restrict


def _pretty(value: object) -> SafeString:
    return format_html('<pre class="df-json">{}</pre>', json.dumps(value, indent=2, ensure_ascii=False))


class SchemaFieldInline(admin.TabularInline):
    model = SchemaField
    fields = ("position", "name", "type", "required", "source", "aliases", "transforms", "constraints", "options")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("position",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are immutable; import a schema file to change fields


class SchemaVersionInline(admin.TabularInline):
    model = SchemaVersion
    fields = ("number", "created_at", "created_by", "checksum")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-number",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DatasetGrantFormSet(forms.BaseInlineFormSet):
    """Grants edited in the console keep the rule the API keeps: a dataset with a manager keeps one."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors) or self.instance.pk is None:
            return
        kept = [
            f.cleaned_data
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE") and (f.instance.pk or f.has_changed())
        ]
        for data in kept:
            dataset_grantee_check(user=data.get("user"), group=data.get("group"))
        managers_left = any(data.get("role") == DatasetRole.MANAGER for data in kept)
        dataset_grants_check(self.instance, managers_left=managers_left)


class DatasetGrantInline(admin.TabularInline):
    model = DatasetGrant
    formset = DatasetGrantFormSet
    fields = ("user", "group", "role")
    autocomplete_fields = ()
    extra = 0

    # Grants are managed by the dataset's managers, as in the API.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_add_permission(request, obj) and _may(request, obj, DatasetAction.MANAGE_GRANTS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and _may(request, obj, DatasetAction.MANAGE_GRANTS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and _may(request, obj, DatasetAction.MANAGE_GRANTS)


def _may(request: HttpRequest, dataset: Dataset | None, action: str) -> bool:
    """The per-dataset rule of ``dataset_may``; None (a list page, a new object) leaves it to the object."""
    return dataset is None or dataset_may(request.user, dataset, action)


class SchemaImportForm(forms.Form):
    schema_file = forms.FileField(
        required=False, help_text="A dataset schema file (JSON). Changed fields create a new schema version."
    )
    # The file's text, carried from the preview to the confirmation.
    schema_text = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean returns cleaned_data, never None
        if not data.get("schema_file") and not data.get("schema_text"):
            self.add_error("schema_file", "Choose a schema file.")
        return data


class DatasetForm(forms.ModelForm):
    """The parts of a dataset its schema file does not own: notifications (targets checked here)."""

    class Meta:
        model = Dataset
        fields = list(DATASET_NOTIFICATION_FIELDS)

    def clean_notify_webhooks(self) -> list[str]:
        try:
            return notify_webhooks_clean(self.cleaned_data.get("notify_webhooks"))
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None

    def clean_notify_emails(self) -> list[str]:
        try:
            return notify_emails_clean(self.cleaned_data.get("notify_emails"))
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    change_form_template = "admin/ingestion/dataset/change_form.html"
    change_list_template = "admin/ingestion/dataset/change_list.html"
    list_display = ("slug", "name", "key_fields", "schema_version", "reject_threshold", "updated_at", "data_link")
    search_fields = ("slug", "name")
    fieldsets = (
        (
            None,
            {
                "fields": ("slug", "name", "description", "key_fields", "delimiter", "reject_threshold"),
                "description": "These come from the dataset's schema file: import a new version of it to change "
                "them (Import a schema file, or manage.py dataset_apply).",
            },
        ),
        (
            "Notifications",
            {
                "fields": ("notify_webhooks", "notify_emails", "notify_on_success", "notify_reject_rate"),
                "description": "Failed runs are always notified to these targets (and to NOTIFY_WEBHOOKS / "
                'NOTIFY_EMAILS). Lists are JSON, e.g. ["https://hooks.example.com/dataflow"].',
            },
        ),
        (None, {"fields": ("current_fields",)}),
    )
    readonly_fields = ("slug", "name", "description", "key_fields", "delimiter", "reject_threshold", "current_fields")
    inlines = [SchemaVersionInline, DatasetGrantInline]

    @admin.display(description="Data")
    def data_link(self, obj: Dataset) -> SafeString | str:
        """A link to the dataset's data page (console URL by name: the page lives in processing)."""
        if obj.current_schema_id is None:
            return "—"
        return format_html('<a href="{}">data</a>', reverse("admin:processing_data", args=[obj.slug]))

    def save_model(self, request: HttpRequest, obj: Dataset, form: forms.ModelForm, change: bool) -> None:
        # Through the service: one audit event naming what changed.
        dataset_notifications_set(
            dataset=obj, changes={f: form.cleaned_data[f] for f in form.changed_data}, actor=request.user
        )

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        if not isinstance(formset, DatasetGrantFormSet):
            super().save_formset(request, form, formset, change)
            return
        _grants_save(formset, request.user)

    @admin.display(description="Schema", ordering="current_schema__number")
    def schema_version(self, obj: Dataset) -> str:
        return f"v{obj.current_schema.number}" if obj.current_schema else "—"

    @admin.display(description="Fields (current schema)")
    def current_fields(self, obj: Dataset) -> SafeString | str:
        if obj.current_schema is None:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (
                    f.position + 1,
                    f.name,
                    f.type,
                    "required" if f.required else "",
                    f.source or "",
                    json.dumps(
                        {**f.constraints, **f.options, **({"transforms": f.transforms} if f.transforms else {})}
                    ),
                )
                for f in obj.current_schema.fields.order_by("position")
            ),
        )
        return format_html(
            '<table class="df-table"><thead><tr><th>#</th><th>Field</th><th>Type</th><th></th><th>Column</th>'
            "<th>Rules</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dataset]:
        # The datasets this user holds a grant on, as in the API (superusers: all).
        return restrict(super().get_queryset(request), request.user, via=None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # datasets come from schema files: use "Import a schema file"

    def has_change_permission(self, request: HttpRequest, obj: Dataset | None = None) -> bool:
        return super().has_change_permission(request, obj) and _may(request, obj, DatasetAction.CHANGE)

    def has_delete_permission(self, request: HttpRequest, obj: Dataset | None = None) -> bool:
        # As the API: only a dataset that never received a file (dataset_delete), by its manager.
        if obj is not None and obj.raw_files.exists():
            return False
        return super().has_delete_permission(request, obj) and _may(request, obj, DatasetAction.DELETE)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, through dataset_delete
        return actions

    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        dataset_delete(dataset=obj, user=request.user)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("import-schema/", wrap(self.import_schema_view), name="ingestion_dataset_import"),
            path("<int:dataset_id>/schema.json", wrap(self.export_schema_view), name="ingestion_dataset_export"),
            path(
                "<int:dataset_id>/edit-schema/",
                wrap(SchemaEditViews(self).edit),
                name="ingestion_dataset_edit_schema",
            ),
            *super().get_urls(),
        ]

    def import_schema_view(self, request: HttpRequest) -> HttpResponse:
        if not (request.user.has_perm("ingestion.add_dataset") and request.user.has_perm("ingestion.change_dataset")):
            raise PermissionDenied
        form = SchemaImportForm(request.POST or None, request.FILES or None)
        preview = result = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["schema_file"]
            text = upload.read(MAX_SCHEMA_SIZE + 1) if upload else form.cleaned_data["schema_text"].encode()
            try:
                spec = schema_loads(text)
                _schema_change_check(request, spec.slug)
                if "confirm" not in request.POST:
                    preview = dataset_apply_preview(spec=spec)
                    if not preview.records_checked:
                        preview = None  # nothing stored is affected: apply at once
                result = None if preview else _schema_file_apply(spec, request.user)
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("schema_file", message)
            if preview is not None:
                form = SchemaImportForm(initial={"schema_text": text.decode()})
            elif result is not None:
                schema_apply_messages(self, request, result)
                return HttpResponseRedirect(reverse("admin:ingestion_dataset_change", args=[result.dataset.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "preview": preview,
            "title": "Import a schema file",
        }
        return TemplateResponse(request, "admin/ingestion/dataset/import_schema.html", context)

    def export_schema_view(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        dataset = get_object_or_404(self.get_queryset(request).select_related("current_schema"), pk=dataset_id)
        if dataset.current_schema is None:
            raise PermissionDenied
        response = HttpResponse(
            json.dumps(dataset.current_schema.definition, indent=2, ensure_ascii=False) + "\n",
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="{dataset.slug}.schema.json"'
        return response


def _schema_file_apply(spec: SchemaSpec, user: Any) -> DatasetApplyResult:
    """A schema file for a new slug creates the dataset as the API does (its creator becomes its manager)."""
    if not Dataset.objects.filter(slug=spec.slug).exists():
        return dataset_create(spec=spec, user=user)
    return dataset_apply(spec=spec, user=user)


def _schema_change_check(request: HttpRequest, slug: str) -> None:
    """A schema file for an existing dataset changes it: the role the API's ``PUT`` needs, on that dataset."""
    existing = Dataset.objects.filter(slug=slug).first()
    if existing is not None and not dataset_may(request.user, existing, DatasetAction.CHANGE):
        needed = action_role(DatasetAction.CHANGE)
        raise ValidationError(f"Dataset {slug!r} exists; changing its schema needs the {needed} role on it.")


def _grants_save(formset: DatasetGrantFormSet, actor: Any) -> None:
    """Apply the grant rows through the same services as the API: same rules, same audit events.

    New and changed grants first, then removals, so that handing the manager
    role from one person to another in one save keeps a manager throughout.
    """
    dataset = formset.instance
    removed: list[DatasetGrant] = []
    # What the admin's change message (the history page) reads after a save.
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for f in formset.forms:
        data = f.cleaned_data
        if not data:
            continue
        # The form has already written its values on its instance: the stored grant is read again.
        stored = DatasetGrant.objects.filter(pk=f.instance.pk).first() if f.instance.pk else None
        if data.get("DELETE"):
            if stored is not None:
                removed.append(stored)
            continue
        if stored is not None and not f.has_changed():
            continue
        if stored is not None and {"user", "group"} & set(f.changed_data):
            removed.append(stored)  # the row now names someone else
        who = {"user": data.get("user"), "group": data.get("group")}
        grant, created = dataset_grant_set(dataset=dataset, role=data["role"], actor=actor, **who)
        if created:
            formset.new_objects.append(grant)
        else:
            formset.changed_objects.append((grant, f.changed_data))
    for grant in removed:
        dataset_grant_delete(grant=grant, actor=actor)
        formset.deleted_objects.append(grant)


@admin.register(SchemaVersion)
class SchemaVersionAdmin(admin.ModelAdmin):
    list_display = ("dataset", "number", "created_at", "created_by")
    list_filter = (("dataset", admin.RelatedOnlyFieldListFilter),)
    fields = ("dataset", "number", "checksum", "created_at", "created_by", "changes", "schema_file")
    readonly_fields = fields
    inlines = [SchemaFieldInline]

    class Media:
        css = {"all": ("ingestion/schema.css",)}

    @admin.display(description="Changes")
    def changes(self, obj: SchemaVersion) -> SafeString:
        """What this version changed, against the dataset's previous version."""
        return version_diff_html(obj)

    @admin.display(description="Schema file")
    def schema_file(self, obj: SchemaVersion) -> SafeString:
        return _pretty(obj.definition)

    def get_queryset(self, request: HttpRequest) -> QuerySet[SchemaVersion]:
        return restrict(super().get_queryset(request), request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RawFile)
class RawFileAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "original_name", "size", "encoding", "delimiter", "state", "created_at")
    list_filter = (("dataset", admin.RelatedOnlyFieldListFilter), "state", "encoding")
    search_fields = ("original_name", "sha256")
    readonly_fields = [f.name for f in RawFile._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RawFile]:
        return restrict(super().get_queryset(request), request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail: read-only, newest first."""

    list_display = ("at", "actor_name", "action", "dataset_slug", "object_type", "object_id", "ip")
    list_filter = ("action", ("dataset", admin.RelatedOnlyFieldListFilter))
    search_fields = ("actor_name", "dataset_slug", "object_id")
    date_hierarchy = "at"
    fields = (
        "at",
        "actor",
        "actor_name",
        "action",
        "dataset",
        "dataset_slug",
        "object_type",
        "object_id",
        "ip",
        "details_pretty",
    )
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="Details")
    def details_pretty(self, obj: AuditEvent) -> SafeString:
        return _pretty(obj.details)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        # As the API: the events of the datasets one manages; superusers also those of no dataset.
        return restrict(super().get_queryset(request), request.user, DatasetAction.AUDIT)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
