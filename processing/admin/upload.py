"""Upload in the console: choose a dataset and a file, read the dry-run preview, confirm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from dataflow.uploads import upload_too_large
from ingestion.models import Dataset, RawFile
from ingestion.services import raw_file_discard, raw_file_receive, raw_file_set_dialect

from ..models import RunTrigger
from ..services import BrokerUnavailable, raw_file_preview, run_enqueue

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

ENCODINGS = [("", "detect"), ("utf-8", "UTF-8"), ("cp1252", "Windows-1252"), ("latin-1", "ISO-8859-1 (Latin-1)")]
DELIMITERS = [("", "detect"), (",", "comma ,"), (";", "semicolon ;"), ("\t", "tab"), ("|", "pipe |")]


class UploadForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.filter(current_schema__isnull=False))
    file = forms.FileField(help_text="A CSV file with a header row.")
    encoding = forms.ChoiceField(choices=ENCODINGS, required=False)
    delimiter = forms.ChoiceField(choices=DELIMITERS, required=False)


class DialectForm(forms.Form):
    encoding = forms.ChoiceField(choices=ENCODINGS[1:])
    delimiter = forms.ChoiceField(choices=DELIMITERS[1:])


class UploadViews:
    """The two pages of the upload flow, bound to the run admin."""

    def __init__(self, model_admin: ModelAdmin) -> None:
        self.admin = model_admin

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin.admin_site.each_context(request),
            "opts": self.admin.model._meta,
            "max_upload_size": settings.DATAFLOW["MAX_UPLOAD_SIZE"],
            **extra,
        }

    def upload(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("processing.upload_file"):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        too_large = upload_too_large(request)
        if too_large is not None:
            form.errors.clear()
            form.add_error("file", f"The file is larger than the limit of {too_large} bytes.")
        elif request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                raw_file = raw_file_receive(
                    dataset=form.cleaned_data["dataset"],
                    source=upload,
                    original_name=upload.name,
                    user=request.user,
                    encoding=form.cleaned_data["encoding"] or None,
                    delimiter=form.cleaned_data["delimiter"] or None,
                )
            except ValidationError as exc:
                form.add_error("file", exc)
            else:
                return HttpResponseRedirect(reverse("admin:processing_run_preview", args=[raw_file.pk]))
        context = self._context(request, form=form, title="Upload a CSV file")
        return TemplateResponse(request, "admin/processing/run/upload.html", context)

    def preview(self, request: HttpRequest, raw_file_id: int) -> HttpResponse:
        if not request.user.has_perm("processing.upload_file"):
            raise PermissionDenied
        raw_file = get_object_or_404(RawFile.objects.select_related("dataset"), pk=raw_file_id)
        existing = raw_file.runs.order_by("pk").first()
        if existing is not None:  # already confirmed (e.g. a double click)
            return HttpResponseRedirect(reverse("admin:processing_run_change", args=[existing.pk]))
        dialect = DialectForm(
            request.POST if request.POST.get("action") == "dialect" else None,
            initial={"encoding": raw_file.encoding, "delimiter": raw_file.delimiter},
        )
        if request.method == "POST":
            action = request.POST.get("action")
            if action == "discard":
                raw_file_discard(raw_file=raw_file)
                self.admin.message_user(request, "The file was discarded.")
                return HttpResponseRedirect(reverse("admin:processing_run_upload"))
            if action == "confirm":
                try:
                    run = run_enqueue(
                        dataset=raw_file.dataset, raw_file=raw_file, trigger=RunTrigger.ADMIN, user=request.user
                    )
                except BrokerUnavailable as exc:
                    self.admin.message_user(request, str(exc), messages.WARNING)
                    return HttpResponseRedirect(reverse("admin:processing_run_change", args=[exc.run_id]))
                self.admin.message_user(
                    request, format_html("Run #{} is queued; this page follows its progress.", run.pk)
                )
                return HttpResponseRedirect(reverse("admin:processing_run_change", args=[run.pk]))
            if action == "dialect" and dialect.is_valid():
                raw_file_set_dialect(raw_file=raw_file, **dialect.cleaned_data)
                return HttpResponseRedirect(request.path)
        preview = raw_file_preview(raw_file=raw_file)
        context = self._context(
            request,
            title=f"Preview of {raw_file.original_name or 'the upload'}",
            raw_file=raw_file,
            preview=preview,
            dialect=dialect,
            can_confirm=preview.status != "failed",
        )
        return TemplateResponse(request, "admin/processing/run/preview.html", context)
