"""Upload in the console: choose a dataset and a file, read the dry-run preview, confirm."""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from core.uploads import upload_too_large
from ingestion.models import Dataset, DatasetAction, RawFile
from ingestion.selectors import restrict
from ingestion.services.raw_files import raw_file_discard, raw_file_receive, raw_file_set_dialect
from ingestion.storage import StorageError, StorageFull, storage_errors

from ..models import RunTrigger
from ..services.broker import BrokerUnavailable
from ..services.previews import raw_file_preview
from ..services.runs import run_enqueue

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

# Encodings a file can be declared in, by their canonical codec names (as files store them).
ENCODINGS = [("", "detect")] + [
    (codecs.lookup(name).name, label)
    for name, label in (
        ("utf-8", "UTF-8"),
        ("utf-16", "UTF-16 (with a byte-order mark)"),
        ("utf-16-le", "UTF-16 little-endian (no byte-order mark)"),
        ("utf-16-be", "UTF-16 big-endian (no byte-order mark)"),
        ("cp1252", "Windows-1252 (Western European)"),
        ("latin-1", "ISO-8859-1 (Latin-1)"),
        ("iso8859-15", "ISO-8859-15 (Latin-9)"),
        ("cp1250", "Windows-1250 (Central European)"),
        ("iso8859-2", "ISO-8859-2 (Central European)"),
        ("cp1251", "Windows-1251 (Cyrillic)"),
        ("koi8-r", "KOI8-R (Russian)"),
        ("koi8-u", "KOI8-U (Ukrainian)"),
        ("iso8859-5", "ISO-8859-5 (Cyrillic)"),
        ("cp1253", "Windows-1253 (Greek)"),
        ("iso8859-7", "ISO-8859-7 (Greek)"),
        ("cp1254", "Windows-1254 (Turkish)"),
        ("iso8859-9", "ISO-8859-9 (Turkish)"),
        ("cp1257", "Windows-1257 (Baltic)"),
        ("iso8859-13", "ISO-8859-13 (Baltic)"),
        ("cp1255", "Windows-1255 (Hebrew)"),
        ("iso8859-8", "ISO-8859-8 (Hebrew)"),
        ("cp1256", "Windows-1256 (Arabic)"),
        ("iso8859-6", "ISO-8859-6 (Arabic)"),
        ("cp1258", "Windows-1258 (Vietnamese)"),
        ("shift_jis", "Shift-JIS (Japanese)"),
        ("cp932", "Windows-31J / CP932 (Japanese)"),
        ("euc_jp", "EUC-JP (Japanese)"),
        ("gb18030", "GB18030 (Chinese)"),
        ("gbk", "GBK (Simplified Chinese)"),
        ("big5", "Big5 (Traditional Chinese)"),
        ("euc_kr", "EUC-KR (Korean)"),
        ("cp949", "CP949 / UHC (Korean)"),
        ("mac-roman", "Mac OS Roman"),
    )
]
DELIMITERS = [("", "detect"), (",", "comma ,"), (";", "semicolon ;"), ("\t", "tab"), ("|", "pipe |")]


class UploadForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none())
    file = forms.FileField(help_text="A CSV file with a header row.")
    encoding = forms.ChoiceField(choices=ENCODINGS, required=False)
    delimiter = forms.ChoiceField(choices=DELIMITERS, required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The datasets this user may upload to, as the API decides it (the ingester role).
        with_schema = Dataset.objects.filter(current_schema__isnull=False)
        field = self.fields["dataset"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = restrict(with_schema, user, DatasetAction.UPLOAD, via=None)


class DialectForm(forms.Form):
    encoding = forms.ChoiceField(choices=ENCODINGS[1:])
    delimiter = forms.ChoiceField(choices=DELIMITERS[1:])

    def __init__(self, *args: Any, current: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A file may already be read with an encoding the list does not name (given elsewhere).
        if current and current not in dict(ENCODINGS):
            # Declared above as a ChoiceField.
            cast(forms.ChoiceField, self.fields["encoding"]).choices = [(current, current), *ENCODINGS[1:]]


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
        form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
        status = 200
        too_large = upload_too_large(request)
        if too_large is not None:
            form.errors.clear()
            form.add_error("file", f"The file is larger than the limit of {too_large} bytes.")
        elif request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                with storage_errors():
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
            except StorageError as exc:  # full (507) or read-only (503): nothing was kept
                form.add_error("file", str(exc))
                status = 507 if isinstance(exc, StorageFull) else 503
            else:
                return HttpResponseRedirect(reverse("admin:processing_run_preview", args=[raw_file.pk]))
        context = self._context(request, form=form, title="Upload a CSV file")
        return TemplateResponse(request, "admin/processing/run/upload.html", context, status=status)

    def preview(self, request: HttpRequest, raw_file_id: int) -> HttpResponse:
        if not request.user.has_perm("processing.upload_file"):
            raise PermissionDenied
        raw_files = restrict(RawFile.objects.select_related("dataset"), request.user, DatasetAction.UPLOAD)
        raw_file = get_object_or_404(raw_files, pk=raw_file_id)
        existing = raw_file.runs.order_by("pk").first()
        if existing is not None:  # already confirmed (e.g. a double click)
            return HttpResponseRedirect(reverse("admin:processing_run_change", args=[existing.pk]))
        dialect = DialectForm(
            request.POST if request.POST.get("action") == "dialect" else None,
            initial={"encoding": raw_file.encoding, "delimiter": raw_file.delimiter},
            current=raw_file.encoding,
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
