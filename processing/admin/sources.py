"""HTTP sources in the console: configure (secret masked), pull now, preview a pull."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from ingestion.http.guard import FetchError
from ingestion.models import Dataset, DatasetAction, Source
from ingestion.selectors import dataset_may, restrict
from ingestion.services.sources import SOURCE_FIELDS, source_clean, source_create, source_delete, source_update
from ingestion.sourcekinds import (
    COMMON_FIELDS,
    DEFAULT_KIND,
    SCHEDULE_FIELDS,
    SECRET_FIELD,
    SOURCE_KINDS,
    read_only_fields,
)

from ..models import RunTrigger
from ..services.broker import BrokerUnavailable
from ..services.previews import source_preview
from ..services.sources import source_pull
from .common import pretty_json

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldOpts


class SourceForm(forms.ModelForm):
    """The source's fields, with its secret write-only: never rendered back."""

    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Bearer token, API key or password. Stored encrypted and never shown again; "
        "leave empty to keep the stored one.",
    )
    clear_secret = forms.BooleanField(required=False, help_text="Remove the stored secret.")

    class Meta:
        model = Source
        fields = list(SOURCE_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # As in the API, a source saved without a kind is of the default one.
        self.fields["kind"].required = False

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or DEFAULT_KIND

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # Django's private hook, absent from django-stubs
        if self.errors:
            return
        try:
            source_clean(self.instance, secret=self.secret_value())
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, errors)

    def secret_value(self) -> str | None:
        """The new secret: None keeps the stored one, "" removes it."""
        if self.cleaned_data.get("clear_secret"):
            return ""
        return self.cleaned_data.get("secret") or None


def source_fieldsets() -> tuple[tuple[str | None, _FieldOpts], ...]:
    """The form's sections: the common fields, each kind's own (ingestion.sourcekinds), the schedule."""
    # The secret is entered write-only, next to what is stored and a way to clear it.
    shown = {SECRET_FIELD: ("secret_state", SECRET_FIELD, "clear_secret")}
    sections: dict[str | None, list[str]] = {}
    for kind in SOURCE_KINDS.values():
        for title, names in kind.fieldsets:
            section = sections.setdefault(title, [])
            section += [n for name in names for n in shown.get(name, (name,)) if n not in section]
    fieldsets: list[tuple[str | None, _FieldOpts]] = [(None, {"fields": COMMON_FIELDS})]
    fieldsets += [(title, {"fields": tuple(names)}) for title, names in sections.items()]
    fieldsets += [("Schedule", {"fields": SCHEDULE_FIELDS}), (None, {"fields": ("created_at", "updated_at")})]
    return tuple(fieldsets)


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    change_form_template = "admin/processing/source/change_form.html"
    list_display = ("name", "dataset", "endpoint", "pagination", "schedule_text", "enabled", "last_status", "watermark")
    list_filter = (("dataset", admin.RelatedOnlyFieldListFilter), "enabled", "schedule", "pagination")
    search_fields = ("name", "url")
    readonly_fields = ("secret_state", *read_only_fields(), "created_at", "updated_at")
    fieldsets = source_fieldsets()

    @admin.display(description="URL")
    def endpoint(self, obj: Source) -> str:
        return obj.url.split("?", 1)[0]

    @admin.display(description="Schedule")
    def schedule_text(self, obj: Source) -> str:
        if obj.schedule == Source.Schedule.INTERVAL:
            return f"every {obj.interval_minutes} min"
        if obj.schedule == Source.Schedule.CRON:
            return obj.cron
        return "—"

    @admin.display(description="Last pull")
    def last_status(self, obj: Source) -> str:
        run = obj.runs.order_by("-created_at", "-id").first()
        return f"#{run.pk} {run.status}" if run else "—"

    @admin.display(description="Stored secret")
    def secret_state(self, obj: Source) -> str:
        return "●●●●●●●● stored (encrypted)" if obj.has_secret else "none"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Source]:
        # The sources of the datasets this user holds a grant on, as in the API.
        return restrict(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "dataset":  # a new source goes to a dataset whose sources this user manages
            datasets = Dataset.objects.all()
            kwargs["queryset"] = restrict(datasets, request.user, DatasetAction.MANAGE_SOURCES, via=None)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Source | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or dataset_may(request.user, obj.dataset, DatasetAction.MANAGE_SOURCES))

    def has_delete_permission(self, request: HttpRequest, obj: Source | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or dataset_may(request.user, obj.dataset, DatasetAction.MANAGE_SOURCES))

    def get_readonly_fields(self, request: HttpRequest, obj: Source | None = None) -> Any:
        # A source stays with its dataset (its watermark and runs belong there).
        return (*self.readonly_fields, "dataset") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in SOURCE_FIELDS if name in form.cleaned_data}
        secret = form.secret_value()
        if change:
            saved = source_update(source=Source.objects.get(pk=obj.pk), data=data, secret=secret, user=request.user)
        else:
            saved = source_create(dataset=data.pop("dataset"), data=data, secret=secret, user=request.user)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Source) -> None:
        source_delete(source=obj, user=request.user)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:source_id>/pull/", wrap(require_POST(self.pull_view)), name="ingestion_source_pull"),
            path("<int:source_id>/preview/", wrap(require_POST(self.preview_view)), name="ingestion_source_preview"),
            *super().get_urls(),
        ]

    def _source_for_pull(self, request: HttpRequest, source_id: int) -> Source:
        if not request.user.has_perm("processing.upload_file"):
            raise PermissionDenied
        source = get_object_or_404(self.get_queryset(request).select_related("dataset"), pk=source_id)
        if not dataset_may(request.user, source.dataset, DatasetAction.PULL):
            raise PermissionDenied
        return source

    def pull_view(self, request: HttpRequest, source_id: int) -> HttpResponse:
        source = self._source_for_pull(request, source_id)
        try:
            run = source_pull(source=source, user=request.user, trigger=RunTrigger.ADMIN)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:ingestion_source_change", args=[source.pk]))
        except BrokerUnavailable as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:processing_run_change", args=[exc.run_id]))
        self.message_user(request, f"Queued run #{run.pk}: pulling {source.name}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:processing_run_change", args=[run.pk]))

    def preview_view(self, request: HttpRequest, source_id: int) -> HttpResponse:
        source = self._source_for_pull(request, source_id)
        error = ""
        result = None
        try:
            result = source_preview(source=source)
        except (FetchError, ValidationError) as exc:
            error = "; ".join(exc.messages) if isinstance(exc, ValidationError) else f"pulling failed: {exc}"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Preview a pull of {source.name}",
            "source": source,
            "error": error,
            "pull": result.pull if result else None,
            "preview": result.preview if result else None,
            "summary": pretty_json(result.preview.summary) if result else "",
        }
        return TemplateResponse(request, "admin/processing/source/preview.html", context)
