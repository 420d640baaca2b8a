"""Rejected rows: errors per run, editable raw values, re-validate and load."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ingestion.models import DatasetAction
from ingestion.selectors import action_role, dataset_may, restrict

from ..models import RejectedRow, RunTrigger
from ..services.rejects import rejected_rows_reload
from .common import errors_text, pretty_json


class RejectedRowForm(forms.ModelForm):
    class Meta:
        model = RejectedRow
        fields = ("raw",)
        help_texts = {"raw": "The values as read, by column. Fix them, save, then use “Re-validate and load”."}

    def clean_raw(self) -> dict[str, Any]:
        raw = self.cleaned_data["raw"]
        if not isinstance(raw, dict):
            raise ValidationError("Raw values must be a JSON object of column: value.")
        for column, value in raw.items():
            if column == "__extra__":
                if not isinstance(value, list):
                    raise ValidationError("__extra__ must be a list of values (remove it to drop them).")
            elif not isinstance(value, str):
                raise ValidationError(f"The value of {column!r} must be text (in quotes).")
        return raw


@admin.register(RejectedRow)
class RejectedRowAdmin(admin.ModelAdmin):
    form = RejectedRowForm
    list_display = ("line_number", "run_link", "errors_summary", "raw_summary")
    list_display_links = ("line_number",)
    list_filter = (("run__dataset", admin.RelatedOnlyFieldListFilter), ("run", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("run", "run__dataset")
    ordering = ("run", "line_number")
    list_per_page = 100
    show_full_result_count = False
    actions = ["revalidate_and_load"]
    fields = ("run_link", "line_number", "errors_pretty", "raw", "schema")
    readonly_fields = ("run_link", "line_number", "errors_pretty", "schema")

    @admin.display(description="Run", ordering="run")
    def run_link(self, obj: RejectedRow) -> SafeString:
        url = reverse("admin:processing_run_change", args=[obj.run_id])
        return format_html('<a href="{}">#{} ({})</a>', url, obj.run_id, obj.run.dataset.slug)

    @admin.display(description="Errors")
    def errors_summary(self, obj: RejectedRow) -> SafeString:
        return format_html('<span class="df-errors">{}</span>', errors_text(obj.errors))

    @admin.display(description="Raw values")
    def raw_summary(self, obj: RejectedRow) -> str:
        text = ", ".join(f"{k}={v!r}" for k, v in obj.raw.items())
        return text if len(text) <= 160 else text[:157] + "…"

    @admin.display(description="Errors")
    def errors_pretty(self, obj: RejectedRow) -> SafeString:
        return pretty_json(obj.errors)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RejectedRow]:
        # The rows of the datasets this user holds a grant on, as in the API.
        return restrict(super().get_queryset(request), request.user, via="run__dataset")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RejectedRow | None = None) -> bool:
        # Editing a row's values is fixing it: the role the dataset grants for that.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or dataset_may(request.user, obj.run.dataset, DatasetAction.FIX_REJECTED))

    @admin.action(description="Re-validate and load the selected rows", permissions=["change"])
    def revalidate_and_load(self, request: HttpRequest, queryset: QuerySet[RejectedRow]) -> None:
        rows = queryset.select_related("run", "run__dataset").order_by("run_id", "line_number")
        for run, group in groupby(rows, key=lambda r: r.run):
            ids = [r.pk for r in group]
            if not dataset_may(request.user, run.dataset, DatasetAction.FIX_REJECTED):
                self.message_user(
                    request,
                    f"Rows of run #{run.pk} were not loaded: fixing rejected rows of dataset "
                    f"{run.dataset.slug!r} needs the {action_role(DatasetAction.FIX_REJECTED)} role on it.",
                    messages.ERROR,
                )
                continue
            try:
                new_run, loaded = rejected_rows_reload(
                    run=run, row_ids=ids, user=request.user, trigger=RunTrigger.ADMIN
                )
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
                continue
            left = new_run.summary.get("fixed_rows_of_run", {}).get("left_lossy", 0)
            still = len(ids) - loaded - left
            url = reverse("admin:processing_run_change", args=[new_run.pk])
            level = messages.SUCCESS if not still else messages.WARNING
            self.message_user(
                request,
                format_html(
                    'Run <a href="{}">#{}</a> loaded {} of {} rows of run #{}; {} still rejected (now listed under '
                    "the new run){}.",
                    url,
                    new_run.pk,
                    loaded,
                    len(ids),
                    run.pk,
                    still,
                    f" ({new_run.error})" if new_run.error else "",
                ),
                level,
            )
            if left:
                self.message_user(
                    request,
                    f"{left} row(s) stayed in quarantine: their values were replaced when they were rejected "
                    "(NUL, undecodable bytes or a cut-off long value). Edit them, then load them again.",
                    messages.WARNING,
                )
