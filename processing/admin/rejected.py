"""Rejected rows: errors per run, filters by field and kind of error, a form per row, bulk fixes."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ingestion.models import DatasetAction
from ingestion.selectors import action_role, dataset_may, restrict

from ..models import RejectedRow, RunTrigger
from ..reject_errors import ROW_FIELD, error_groups, rows_with_error
from ..services.rejects import (
    EXTRA,
    rejected_row_edit,
    rejected_rows_discard,
    rejected_rows_reload,
    rejected_rows_replace,
    rejected_rows_set_value,
)
from .common import errors_text


def _field_label(name: str) -> str:
    return "(whole row)" if name == ROW_FIELD else name


class ErrorFieldFilter(admin.SimpleListFilter):
    """``?error_field=``: rows with an error on that field (the run page's links use it)."""

    title = "error on field"
    parameter_name = "error_field"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # The fields with errors in the selected run; always the chosen one, so
        # a link to a field filters even where the choices are not listed.
        names: list[str] = []
        run_id = request.GET.get("run__id__exact", "")
        if run_id.isdigit():
            rows = model_admin.get_queryset(request).filter(run_id=int(run_id))
            names = sorted({g.field for g in error_groups(rows, examples=0)})
        if self.value() and self.value() not in names:
            names.append(str(self.value()))
        return [(n, _field_label(n)) for n in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RejectedRow]) -> QuerySet[RejectedRow]:
        name = self.value()
        return rows_with_error(queryset, field=name) if name else queryset


class ErrorKindFilter(admin.SimpleListFilter):
    """``?error_kind=``: rows with an error of that kind (the message without its quoted values)."""

    title = "kind of error"
    parameter_name = "error_kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        kind = self.value()
        return [(kind, kind)] if kind else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[RejectedRow]) -> QuerySet[RejectedRow]:
        kind = self.value()
        if not kind:
            return queryset
        return rows_with_error(queryset, field=request.GET.get(ErrorFieldFilter.parameter_name, ""), kind=kind)


class QuarantineFilter(admin.SimpleListFilter):
    """Rows in quarantine by default; discarded rows (and all rows) on demand."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("discarded", "Discarded"), ("all", "All")]

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if choice["display"] == "All" and choice["query_string"] == changelist.get_query_string(
                remove=[self.parameter_name]
            ):
                choice["display"] = "In quarantine"
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[RejectedRow]) -> QuerySet[RejectedRow]:
        if self.value() == "discarded":
            return queryset.exclude(discarded_at=None)
        if self.value() == "all":
            return queryset
        return queryset.filter(discarded_at=None)


class RejectedRowActionForm(ActionForm):
    """The inputs the bulk actions read, next to the action menu."""

    column = forms.CharField(required=False, label="Column", strip=False)
    value = forms.CharField(required=False, label="Value", strip=False)
    find = forms.CharField(required=False, label="Find", strip=False)
    replace = forms.CharField(required=False, label="Replace with", strip=False)
    reason = forms.CharField(required=False, label="Reason")


class RejectedRowForm(forms.ModelForm):
    """One input per column of the row (and per extra value), built for the row shown."""

    class Meta:
        model = RejectedRow
        fields: tuple[str, ...] = ()

    columns: list[str] = []
    extras = 0

    def raw_values(self) -> dict[str, Any]:
        """The row's raw values as typed; a value only re-sent by the browser keeps its own line breaks."""
        old = self.instance.raw
        raw: dict[str, Any] = {}
        for i, column in enumerate(self.columns):
            raw[column] = _as_typed(self.cleaned_data[f"col_{i}"], old.get(column))
        if EXTRA in old:
            before = old[EXTRA]
            raw[EXTRA] = [
                _as_typed(self.cleaned_data[f"extra_{i}"], before[i] if i < len(before) else None)
                for i in range(self.extras)
            ]
        return raw


def _as_typed(typed: str, old: Any) -> str:
    # Browsers send a text area's line breaks as CRLF: a value that differs
    # from the stored one only by that was not edited, so it stays as it was.
    if isinstance(old, str) and typed.replace("\r\n", "\n") == old.replace("\r\n", "\n"):
        return old
    return typed


def _row_columns(row: RejectedRow) -> list[str]:
    headers = [h for h in (row.run.summary.get("headers") or []) if h in row.raw]
    return headers + [k for k in row.raw if k not in headers and k != EXTRA]


def _value_field(label: str, value: Any, errors: list[str]) -> forms.CharField:
    text = value if isinstance(value, str) else str(value)
    long = "\n" in text or "\r" in text or len(text) > 80
    widget: forms.Widget = (
        forms.Textarea(attrs={"rows": 3, "cols": 80}) if long else forms.TextInput(attrs={"size": 60})
    )
    help_text = format_html_join("", '<span class="df-errors">{}</span><br>', ((m,) for m in errors))
    return forms.CharField(label=label, required=False, strip=False, initial=text, widget=widget, help_text=help_text)


def row_form(row: RejectedRow) -> type[RejectedRowForm]:
    """The edit form of ``row``: a text input per column, its errors under it."""
    columns = _row_columns(row)
    extra = row.raw.get(EXTRA) or []
    attrs: dict[str, Any] = {"columns": columns, "extras": len(extra)}
    for i, column in enumerate(columns):
        attrs[f"col_{i}"] = _value_field(column, row.raw.get(column), row.errors.get(column, []))
    for i, value in enumerate(extra):
        label = f"extra value {i + 1} (beyond the header)"
        attrs[f"extra_{i}"] = _value_field(label, value, row.errors.get(ROW_FIELD, []) if i == 0 else [])
    return type("RejectedRowColumnsForm", (RejectedRowForm,), attrs)


@admin.register(RejectedRow)
class RejectedRowAdmin(admin.ModelAdmin):
    form = RejectedRowForm
    action_form = RejectedRowActionForm
    list_display = ("line_number", "run_link", "errors_summary", "raw_summary", "discarded")
    list_display_links = ("line_number",)
    list_filter = (
        QuarantineFilter,
        ("run__dataset", admin.RelatedOnlyFieldListFilter),
        ("run", admin.RelatedOnlyFieldListFilter),
        ErrorFieldFilter,
        ErrorKindFilter,
    )
    list_select_related = ("run", "run__dataset")
    ordering = ("run", "line_number")
    list_per_page = 100
    show_full_result_count = False
    actions = ["revalidate_and_load", "set_value", "find_replace", "discard"]
    readonly_fields = ("run_link", "line_number", "row_errors", "schema", "discarded")

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
    def row_errors(self, obj: RejectedRow) -> SafeString:
        return format_html_join(
            "",
            '<span class="df-errors">{}: {}</span><br>',
            ((_field_label(f), ", ".join(m)) for f, m in obj.errors.items()),
        )

    @admin.display(description="Discarded")
    def discarded(self, obj: RejectedRow) -> str:
        if obj.discarded_at is None:
            return "—"
        return f"{obj.discarded_at:%Y-%m-%d %H:%M} by {obj.discarded_by_name or 'a command'}: {obj.discard_reason}"

    def get_queryset(self, request: HttpRequest) -> QuerySet[RejectedRow]:
        # The rows of the datasets this user holds a grant on, as in the API.
        return restrict(super().get_queryset(request), request.user, via="run__dataset")

    def get_fields(self, request: HttpRequest, obj: RejectedRow | None = None) -> Any:
        head = ["run_link", "line_number", "row_errors"]
        if obj is None:
            return [*head, "schema"]
        form = row_form(obj)
        values = [f"col_{i}" for i in range(len(form.columns))] + [f"extra_{i}" for i in range(form.extras)]
        return [*head, *values, "schema", *(["discarded"] if obj.discarded_at else [])]

    def get_form(
        self, request: HttpRequest, obj: RejectedRow | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is not None:
            kwargs["form"] = row_form(obj)
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: RejectedRow | None = None) -> Any:
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: RejectedRow, form: Any, change: bool) -> None:
        # Saved through the service, as every other door: checked, audited, values as typed.
        rejected_row_edit(row=obj, raw=form.raw_values(), user=request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RejectedRow | None = None) -> bool:
        # Editing a row's values is fixing it: the role the dataset grants for that.
        allowed = super().has_change_permission(request, obj)
        if obj is None:
            return allowed
        return (
            allowed
            and obj.discarded_at is None
            and dataset_may(request.user, obj.run.dataset, DatasetAction.FIX_REJECTED)
        )

    def _bulk(self, request: HttpRequest, queryset: QuerySet[RejectedRow], operation: Any) -> int | None:
        ids = list(queryset.values_list("pk", flat=True))
        try:
            result: int = operation(row_ids=ids)
        except PermissionDenied as exc:
            self.message_user(request, str(exc) or "Not allowed.", messages.ERROR)
            return None
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return None
        return result

    @admin.action(description="Set a column to a value (Column, Value)", permissions=["change"])
    def set_value(self, request: HttpRequest, queryset: QuerySet[RejectedRow]) -> None:
        column, value = request.POST.get("column", ""), request.POST.get("value", "")
        changed = self._bulk(
            request,
            queryset,
            lambda row_ids: rejected_rows_set_value(row_ids=row_ids, column=column, value=value, user=request.user),
        )
        if changed is not None:
            self.message_user(request, f"Set {column!r} to {value!r}: {changed} row(s) changed.", messages.SUCCESS)

    @admin.action(description="Find and replace in a column (Column, Find, Replace with)", permissions=["change"])
    def find_replace(self, request: HttpRequest, queryset: QuerySet[RejectedRow]) -> None:
        column, find, replace = (request.POST.get(k, "") for k in ("column", "find", "replace"))
        changed = self._bulk(
            request,
            queryset,
            lambda row_ids: rejected_rows_replace(
                row_ids=row_ids, column=column, find=find, replace=replace, user=request.user
            ),
        )
        if changed is not None:
            self.message_user(
                request,
                f"Replaced {find!r} with {replace!r} in {column!r}: {changed} row(s) changed.",
                messages.SUCCESS,
            )

    @admin.action(description="Discard the selected rows (Reason)", permissions=["change"])
    def discard(self, request: HttpRequest, queryset: QuerySet[RejectedRow]) -> None:
        reason = request.POST.get("reason", "")
        discarded = self._bulk(
            request, queryset, lambda row_ids: rejected_rows_discard(row_ids=row_ids, reason=reason, user=request.user)
        )
        if discarded is not None:
            self.message_user(
                request, f"Discarded {discarded} row(s): they left quarantine without being loaded.", messages.SUCCESS
            )

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
