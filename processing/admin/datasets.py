"""New dataset from a file: upload a sample, review the inferred schema in a form, save, then preview the upload.

The dataset admin of ``ingestion`` with the pages that need the pipeline:
the types are inferred with its converters (``compile_field``), and the
sample then continues into the normal upload preview (``UploadViews``).

1. ``new/``: the sample file (and, when it cannot be detected, its encoding)
   is kept (``sample_keep``) and ``schema_infer`` proposes a schema.
2. ``new/<token>/``: the report (per column: the type and why, outliers,
   null tokens, the key check) and the proposed fields in an editable form;
   saving creates the dataset with ``dataset_create`` (its creator becomes
   its manager, as through the API) and receives the sample as the
   dataset's first upload (``raw_file_receive``), whose preview follows.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from core.uploads import upload_too_large
from ingestion.admin import DatasetAdmin
from ingestion.inference import EncodingUndecided, schema_infer, slug_from_filename
from ingestion.models import Dataset
from ingestion.schema_forms import DatasetIdentityForm, FieldRowFormSet, field_rows_initial, schema_from_forms
from ingestion.services.datasets import dataset_create
from ingestion.services.grants import DatasetConflict
from ingestion.services.raw_files import raw_file_receive
from ingestion.services.samples import sample_discard, sample_keep, sample_open
from ingestion.storage import StorageError, StorageFull, storage_errors

from ..pipeline.fields import compile_field
from .upload import ENCODINGS

# The samples this browser session is defining datasets from: token -> what the form needs again.
SESSION_KEY = "dataflow_dataset_samples"
MAX_SAMPLES_PER_SESSION = 5


class SampleForm(forms.Form):
    file = forms.FileField(help_text="A CSV file with a header row: a sample of the files this dataset will receive.")
    slug = forms.SlugField(
        max_length=64, required=False, help_text="The new dataset's slug (default: from the file name)."
    )
    encoding = forms.ChoiceField(
        choices=ENCODINGS, required=False, help_text="Only when the file's encoding cannot be detected."
    )


def _samples(request: HttpRequest) -> dict[str, Any]:
    return dict(request.session.get(SESSION_KEY) or {})


def _sample_forget(request: HttpRequest, token: str) -> None:
    samples = _samples(request)
    entry = samples.pop(token, None)
    request.session[SESSION_KEY] = samples
    if entry is not None:
        sample_discard(entry["name"])


class ConsoleDatasetAdmin(DatasetAdmin):
    """The dataset admin, whose "Add" is "New dataset from a file"."""

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("new/", wrap(self.new_view), name="ingestion_dataset_new"),
            path("new/<str:token>/", wrap(self.new_fields_view), name="ingestion_dataset_new_fields"),
            *super().get_urls(),
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Django's add permission, as the API's CanCreateDatasets asks.
        return request.user.has_perm("ingestion.add_dataset")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:ingestion_dataset_new"))

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def new_view(self, request: HttpRequest) -> HttpResponse:
        """Step 1: the sample file."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = SampleForm(request.POST if posted else None, request.FILES if posted else None)
        status = 200
        too_large = upload_too_large(request)
        if too_large is not None:
            form.errors.clear()
            form.add_error("file", f"The file is larger than the limit of {too_large} bytes.")
            status = 413
        elif request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            slug = form.cleaned_data["slug"] or slug_from_filename(upload.name or "")
            encoding = form.cleaned_data["encoding"] or None
            name = ""
            try:
                with storage_errors():
                    name = sample_keep(source=upload)
                with sample_open(name) as fh:
                    inference = schema_infer(source=fh, slug=slug, converter_for=compile_field, encoding=encoding)
            except EncodingUndecided as exc:
                form.add_error("encoding", exc)
            except ValidationError as exc:
                form.add_error("file", exc)
            except StorageError as exc:
                form.add_error("file", str(exc))
                status = 507 if isinstance(exc, StorageFull) else 503
            else:
                token = uuid.uuid4().hex
                samples = _samples(request)
                for old in list(samples)[: max(0, len(samples) - MAX_SAMPLES_PER_SESSION + 1)]:
                    sample_discard(samples.pop(old)["name"])
                samples[token] = {
                    "name": name,
                    "original_name": upload.name or "",
                    "encoding": encoding or "",
                    "schema": inference.schema,
                    "report": inference.report(),
                }
                request.session[SESSION_KEY] = samples
                return HttpResponseRedirect(reverse("admin:ingestion_dataset_new_fields", args=[token]))
            if name:
                sample_discard(name)
        if request.method == "POST" and status == 200:
            status = 400
        context = self._context(request, form=form, title="New dataset from a file")
        return TemplateResponse(request, "admin/ingestion/dataset/new_from_file.html", context, status=status)

    def new_fields_view(self, request: HttpRequest, token: str) -> HttpResponse:
        """Step 2: the inferred schema, its report, and the form to change it before saving."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        entry = _samples(request).get(token)
        if entry is None:
            raise Http404("This sample is no longer kept; upload it again.")
        if request.method == "POST" and "_discard" in request.POST:
            _sample_forget(request, token)
            self.message_user(request, "The sample was discarded; no dataset was created.")
            return HttpResponseRedirect(reverse("admin:ingestion_dataset_changelist"))
        schema = entry["schema"]
        posted = request.POST if request.method == "POST" else None
        identity = DatasetIdentityForm(
            posted, initial={"slug": schema["slug"], "name": schema.get("name", "")}, prefix="dataset"
        )
        # Posted rows stand alone: compared with no initial values, a blank extra row stays blank even when
        # the schema changed since the page was shown.
        rows = FieldRowFormSet(posted, initial=None if posted else field_rows_initial(schema), prefix="fields")
        status = 200
        if posted is not None:
            spec = schema_from_forms(identity=identity, rows=rows, base=schema)
            if spec is not None:
                try:
                    result = dataset_create(spec=spec, user=request.user)
                except DatasetConflict as exc:
                    identity.add_error("slug", exc.messages[0])
                except ValidationError as exc:
                    rows.non_form_errors().extend(exc.messages)
                else:
                    return self._sample_upload(request, token, entry, result.dataset)
            status = 400
        context = self._context(
            request,
            title="New dataset from a file",
            identity=identity,
            rows=rows,
            report=entry["report"],
            original_name=entry["original_name"],
        )
        return TemplateResponse(request, "admin/ingestion/dataset/new_fields.html", context, status=status)

    def _sample_upload(self, request: HttpRequest, token: str, entry: dict[str, Any], dataset: Dataset) -> HttpResponse:
        """The new dataset receives its sample as a first upload, whose preview follows (nothing is loaded yet)."""
        self.message_user(request, f"Created dataset {dataset.slug!r} (schema v1).", messages.SUCCESS)
        change_page = HttpResponseRedirect(reverse("admin:ingestion_dataset_change", args=[dataset.pk]))
        if not request.user.has_perm("processing.upload_file"):
            _sample_forget(request, token)
            return change_page
        try:
            with storage_errors(), sample_open(entry["name"]) as fh:
                raw_file = raw_file_receive(
                    dataset=dataset,
                    source=fh,
                    original_name=entry["original_name"],
                    user=request.user,
                    encoding=entry["encoding"] or None,
                )
        except (ValidationError, StorageError, FileNotFoundError) as exc:
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.message_user(request, f"The sample could not be kept as an upload: {message}", messages.WARNING)
            _sample_forget(request, token)
            return change_page
        _sample_forget(request, token)
        return HttpResponseRedirect(reverse("admin:processing_run_preview", args=[raw_file.pk]))


admin.site.unregister(Dataset)
admin.site.register(Dataset, ConsoleDatasetAdmin)
