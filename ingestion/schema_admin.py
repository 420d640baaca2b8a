"""The console's schema pages: "Edit schema" of a dataset, and the diff of a version against the previous one.

Editing goes through the services of ``dataset_apply``: "Preview" shows what
``dataset_apply_preview`` finds in the stored records, "Apply" applies
with ``dataset_apply`` (failing records are quarantined in a schema-change
run), exactly as an imported schema file or the API's ``PUT``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .models import Dataset, DatasetAction, SchemaVersion
from .schema_diff import SchemaDiff, schema_diff
from .schema_forms import DatasetIdentityForm, FieldRowFormSet, field_rows_initial, schema_from_forms
from .selectors import dataset_may, restrict
from .services.datasets import DatasetApplyResult, dataset_apply, dataset_apply_preview, dataset_key_change_check

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin


def schema_apply_messages(model_admin: ModelAdmin, request: HttpRequest, result: DatasetApplyResult) -> None:
    """What applying a schema did, as the console says it (import and edit alike)."""
    verb = "Created" if result.created else "Updated"
    version = f"new schema v{result.schema.number}" if result.new_version else "schema unchanged"
    model_admin.message_user(request, f"{verb} dataset {result.dataset.slug!r} ({version}).", messages.SUCCESS)
    if result.records and result.records.records_quarantined:
        model_admin.message_user(
            request,
            format_html(
                '{} stored record(s) no longer pass and were quarantined as rejected rows of <a href="{}">run {}</a>; '
                "fix them there.",
                result.records.records_quarantined,
                # The run page by its console name (runs belong to processing).
                reverse("admin:processing_run_change", args=[result.records.run_id]),
                result.records.run_id,
            ),
            messages.WARNING,
        )


class SchemaEditViews:
    """The "Edit schema" page of a dataset, bound to the dataset admin."""

    def __init__(self, model_admin: ModelAdmin) -> None:
        self.admin = model_admin

    def edit(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        datasets = restrict(Dataset.objects.select_related("current_schema"), request.user, via=None)
        dataset = get_object_or_404(datasets, pk=dataset_id)
        if not (
            request.user.has_perm("ingestion.change_dataset")
            and dataset_may(request.user, dataset, DatasetAction.CHANGE)
        ):
            raise PermissionDenied
        if dataset.current_schema is None:
            raise PermissionDenied  # a dataset always has a schema once created; nothing to edit otherwise
        current = dataset.current_schema.definition
        posted = request.POST if request.method == "POST" else None
        identity = DatasetIdentityForm(
            posted, initial={"slug": dataset.slug, "name": dataset.name}, slug_fixed=True, prefix="dataset"
        )
        # Posted rows stand alone: compared with no initial values, a blank extra row stays blank even when
        # the schema changed since the page was shown.
        rows = FieldRowFormSet(posted, initial=None if posted else field_rows_initial(current), prefix="fields")
        preview = None
        previewed = ""
        status = 200
        if posted is not None:
            spec = schema_from_forms(identity=identity, rows=rows, base=current)
            if spec is not None:
                try:
                    dataset_key_change_check(dataset=dataset, spec=spec)
                except ValidationError as exc:
                    rows.non_form_errors().extend(exc.messages)
                    spec = None
            # Apply only what was previewed, against the version it was previewed on: fields changed
            # since (by this user or by someone else) are previewed again first.
            previewed = f"v{dataset.current_schema.number}:{spec.fields_checksum()}" if spec is not None else ""
            if spec is not None and "_apply" in posted and posted.get("previewed") == previewed:
                try:
                    result = dataset_apply(spec=spec, user=request.user)
                except ValidationError as exc:
                    rows.non_form_errors().extend(exc.messages)
                else:
                    schema_apply_messages(self.admin, request, result)
                    if result.new_version:
                        return HttpResponseRedirect(
                            reverse("admin:ingestion_schemaversion_change", args=[result.schema.pk])
                        )
                    return HttpResponseRedirect(reverse("admin:ingestion_dataset_change", args=[dataset.pk]))
            elif spec is not None:
                preview = dataset_apply_preview(spec=spec)
                if "_apply" in posted:
                    messages.warning(request, "The schema changed since the preview: check the preview again.")
            if preview is None:
                status = 400  # the forms, or the service, refused the schema
        context = {
            **self.admin.admin_site.each_context(request),
            "opts": self.admin.model._meta,
            "original": dataset,
            "title": f"Edit the schema of {dataset.slug}",
            "identity": identity,
            "rows": rows,
            "preview": preview,
            "previewed": previewed if preview is not None else "",
        }
        return TemplateResponse(request, "admin/ingestion/dataset/edit_schema.html", context, status=status)


def version_previous(version: SchemaVersion) -> SchemaVersion | None:
    return (
        SchemaVersion.objects.filter(dataset_id=version.dataset_id, number__lt=version.number)
        .order_by("-number")
        .first()
    )


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def schema_diff_html(diff: SchemaDiff) -> SafeString:
    """A diff as a table: one row per field added, removed or changed, with the attributes old → new."""
    rows = []
    for change in diff.fields:
        details = [
            format_html(
                '<li><code>{}</code>: <del class="df-old">{}</del> → <ins class="df-new">{}</ins></li>',
                a.name,
                _shown(a.old),
                _shown(a.new),
            )
            if change.change == "changed"
            else format_html("<li><code>{}</code>: {}</li>", a.name, _shown(a.new if a.new is not None else a.old))
            for a in change.attributes
        ]
        if change.moved:
            details.append(format_html("<li>moved from position {} to {}</li>", *change.moved))
        rows.append(
            format_html(
                '<tr class="df-diff-{}" data-field="{}"><td><strong>{}</strong></td><td>{}</td>'
                "<td><ul>{}</ul></td></tr>",
                change.change,
                change.name,
                change.name,
                change.change,
                format_html_join("", "{}", ((d,) for d in details)),
            )
        )
    key = (
        format_html(
            '<p id="diff-key">Key: <del class="df-old">{}</del> → <ins class="df-new">{}</ins></p>',
            ", ".join(diff.key[0]),
            ", ".join(diff.key[1]),
        )
        if diff.key
        else ""
    )
    if not rows:
        return format_html('{}<p id="schema-diff">No field changed.</p>', key)
    return format_html(
        '{}<table class="df-table" id="schema-diff"><thead><tr><th>Field</th><th>Change</th><th>Details</th></tr>'
        "</thead><tbody>{}</tbody></table>",
        key,
        format_html_join("", "{}", ((r,) for r in rows)),
    )


def version_diff_html(version: SchemaVersion) -> SafeString:
    """The diff of a version against the previous one of its dataset (the first version: all fields added)."""
    previous = version_previous(version)
    diff = schema_diff(previous.definition if previous else {}, version.definition)
    heading = (
        format_html("Compared with v{}.", previous.number)
        if previous
        else "The first version of the dataset: every field is new."
    )
    return format_html("<p>{}</p>{}", heading, schema_diff_html(diff))
