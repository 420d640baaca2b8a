"""Runs: list with badges and filters, a live run page, retry / cancel / replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from ingestion.models import DatasetAction
from ingestion.selectors import dataset_actions_for, dataset_may, restrict

from ..exports import rejected_export
from ..models import RejectedRow, Run, RunTrigger
from ..reject_errors import ROW_FIELD, error_groups
from ..selectors import RUN_COUNTERS, run_summary
from ..services.broker import BrokerUnavailable
from ..services.runs import run_cancel, run_replay, run_retry
from . import records
from .common import pretty_json, status_badge
from .data import data_url
from .upload import UploadViews


def _counter(field: str, label: str) -> Callable[[Any, Run], str]:
    """A list column showing one of a run's counters with thousands separators, sorted by it."""

    @admin.display(description=label, ordering=field)
    def show(model_admin: Any, obj: Run) -> str:
        return f"{getattr(obj, field):,}"

    return show


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    change_form_template = "admin/processing/run/change_form.html"
    change_list_template = "admin/processing/run/change_list.html"
    list_display = (
        "id",
        "dataset",
        "badge",
        "trigger",
        "started_by",
        "file_name",
        "read",
        "valid",
        "rejected",
        "inserted",
        "updated",
        "unchanged",
        "duration",
        "created_at",
    )
    list_display_links = ("id", "dataset")
    # Only the datasets and sources of runs this user sees: the filter must not list the others.
    list_filter = (
        "status",
        "trigger",
        ("dataset", admin.RelatedOnlyFieldListFilter),
        ("source", admin.RelatedOnlyFieldListFilter),
        "created_at",
    )
    list_select_related = ("dataset", "started_by", "raw_file")
    search_fields = ("=id", "raw_file__original_name", "raw_file__sha256")
    date_hierarchy = "created_at"
    fields = (
        "dataset",
        "badge",
        "error",
        "trigger",
        "source",
        "started_by",
        "file",
        "schema",
        "parent",
        "noop_of",
        "forced",
        "attempts",
        "chunk_size",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "summary_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Status", ordering="status")
    def badge(self, obj: Run) -> SafeString:
        return status_badge(obj)

    @admin.display(description="File", ordering="raw_file__original_name")
    def file_name(self, obj: Run) -> str:
        """The file's name as it was sent (a source's pull: the source)."""
        if obj.raw_file is None:
            return "—"
        return obj.raw_file.original_name or "(unnamed)"

    # The counters, with thousands separators (12,345) and sortable by their columns.
    read = _counter("rows_read", "Read")
    valid = _counter("rows_valid", "Valid")
    rejected = _counter("rows_rejected", "Rejected")
    inserted = _counter("rows_inserted", "Inserted")
    updated = _counter("rows_updated", "Updated")
    unchanged = _counter("rows_unchanged", "Unchanged")

    @admin.display(description="Duration")
    def duration(self, obj: Run) -> str:
        if not obj.started_at or not obj.finished_at:
            return "—"
        seconds = (obj.finished_at - obj.started_at).total_seconds()
        return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f} min"

    @admin.display(description="File")
    def file(self, obj: Run) -> SafeString | str:
        raw = obj.raw_file
        if raw is None:
            return "—"
        dialect = raw.dialect()
        return format_html(
            "{} — {} bytes, encoding {}, {}<br><code>{}</code> sha256 <code>{}</code>",
            raw.original_name or "(unnamed)",
            raw.size,
            dialect["encoding_text"],
            "NDJSON" if raw.format == raw.Format.NDJSON else f"delimiter {dialect['delimiter_text']}",
            raw.storage_name,
            raw.sha256,
        )

    @admin.display(description="Summary")
    def summary_pretty(self, obj: Run) -> SafeString:
        return pretty_json(obj.summary)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Run]:
        # The runs of the datasets this user holds a grant on, as in the API (superusers: every run).
        return restrict(super().get_queryset(request), request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Run | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Run | None = None) -> bool:
        # Runs are the lineage of records and rejected rows (records' foreign
        # keys refuse it anyway): they are history, not something to tidy away.
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        upload = UploadViews(self)
        return [
            path("upload/", wrap(upload.upload), name="processing_run_upload"),
            path("upload/<int:raw_file_id>/", wrap(upload.preview), name="processing_run_preview"),
            path("<int:run_id>/progress/", wrap(self.progress_view), name="processing_run_progress"),
            path("<int:run_id>/retry/", wrap(require_POST(self.retry_view)), name="processing_run_retry"),
            path("<int:run_id>/cancel/", wrap(require_POST(self.cancel_view)), name="processing_run_cancel"),
            path("<int:run_id>/replay/", wrap(require_POST(self.replay_view)), name="processing_run_replay"),
            path("<int:run_id>/rejected.csv", wrap(self.rejected_csv_view), name="processing_run_rejected_csv"),
            path("records/<slug:slug>/", wrap(records.records_view), name="processing_records"),
            path("records/<slug:slug>/<path:key>/", wrap(records.record_view), name="processing_record"),
            *super().get_urls(),
        ]

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        runs = self.get_queryset(request).select_related("dataset", "raw_file", "source", "started_by")
        run = runs.filter(pk=object_id).first() if object_id and object_id.isdigit() else None
        if run is not None:
            summary = run_summary(run, detail=False)
            may = dataset_actions_for(request.user, run.dataset) if _operator(request) else set()
            context.update(
                run=run,
                counters=[(name, name.removeprefix("rows_"), summary[name]) for name in RUN_COUNTERS],
                can_retry=DatasetAction.RETRY in may,
                can_cancel=DatasetAction.CANCEL in may,
                can_replay=DatasetAction.REPLAY in may,
                rejected_url=reverse("admin:processing_rejectedrow_changelist") + f"?run__id__exact={run.pk}",
                records_url=data_url(run.dataset.slug, _run=run.pk),
                children=list(self.get_queryset(request).filter(parent=run).order_by("pk")),
                **_rejects_context(run),
            )
        return super().changeform_view(request, object_id, form_url, context)

    def progress_view(self, request: HttpRequest, run_id: int) -> JsonResponse:
        """The small JSON view the run page polls for its progress bar."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        runs = self.get_queryset(request).select_related("dataset", "raw_file", "source", "started_by")
        run = get_object_or_404(runs, pk=run_id)
        # The run summary every door shows (without its first errors: this is polled every second).
        return JsonResponse({**run_summary(run, detail=False), "status_display": run.get_status_display()})

    def rejected_csv_view(self, request: HttpRequest, run_id: int) -> StreamingHttpResponse:
        """The run's rejected rows still in quarantine, as ``export_rejected --run`` writes them."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(self.get_queryset(request).select_related("dataset"), pk=run_id)
        response = StreamingHttpResponse(rejected_export(run, "csv"), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-rejected.csv"'
        return response

    def _operate(self, request: HttpRequest, run_id: int, action: str) -> HttpResponseRedirect:
        if not _operator(request):
            raise PermissionDenied
        # A run of a dataset the user cannot see is not found; one they may see but not
        # act on is refused: the API's 404 and 403, asked of the same function.
        run = get_object_or_404(self.get_queryset(request).select_related("dataset", "raw_file"), pk=run_id)
        if not dataset_may(request.user, run.dataset, action):
            raise PermissionDenied
        try:
            if action == DatasetAction.CANCEL:
                run = run_cancel(run=run, user=request.user)
                text = (
                    "Run cancelled." if run.is_finished else "Cancel requested: the run stops after its current chunk."
                )
                self.message_user(request, text, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:processing_run_change", args=[run.pk]))
            operation = run_retry if action == DatasetAction.RETRY else run_replay
            new_run = operation(run=run, user=request.user, trigger=RunTrigger.ADMIN)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:processing_run_change", args=[run.pk]))
        except BrokerUnavailable as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:processing_run_change", args=[exc.run_id]))
        self.message_user(request, f"Queued run #{new_run.pk} ({action} of run #{run.pk}).", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:processing_run_change", args=[new_run.pk]))

    def retry_view(self, request: HttpRequest, run_id: int) -> HttpResponseRedirect:
        return self._operate(request, run_id, DatasetAction.RETRY)

    def cancel_view(self, request: HttpRequest, run_id: int) -> HttpResponseRedirect:
        return self._operate(request, run_id, DatasetAction.CANCEL)

    def replay_view(self, request: HttpRequest, run_id: int) -> HttpResponseRedirect:
        return self._operate(request, run_id, DatasetAction.REPLAY)


def _rejects_context(run: Run, *, first: int = 5) -> dict[str, Any]:
    """The run page's rejected-rows section: errors by field and kind, each a link to those rows, the first rows."""
    rows = RejectedRow.objects.filter(run=run, discarded_at=None)
    changelist = reverse("admin:processing_rejectedrow_changelist")
    of_run = {"run__id__exact": run.pk}
    groups = [
        {
            "field": "(whole row)" if g.field == ROW_FIELD else g.field,
            "kind": g.kind,
            "count": g.count,
            "example": g.example,
            "url": changelist
            + "?"
            + urlencode({"run__id__exact": run.pk, "error_field": g.field, "error_kind": g.kind}),
        }
        for g in error_groups(rows)
    ]
    return {
        "reject_groups": groups,
        "first_rejects": list(rows.order_by("line_number")[:first]),
        "rejects_discarded": RejectedRow.objects.filter(run=run).exclude(discarded_at=None).count(),
        "rejects_discarded_url": changelist + "?" + urlencode({**of_run, "state": "discarded"}),
        "rejects_csv_url": reverse("admin:processing_run_rejected_csv", args=[run.pk]),
    }


def _operator(request: HttpRequest) -> bool:
    """The console's operators (the Operators group); which runs they may act on, their grants say."""
    return request.user.has_perm("processing.operate_run")
