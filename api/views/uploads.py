"""``/api/v1/datasets/{slug}/uploads/``: send a CSV file; get a queued run (202) or a dry-run preview."""

from __future__ import annotations

import dataclasses
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.models import Dataset, DatasetAction
from ingestion.selectors import action_role
from ingestion.services.raw_files import NotTextFile
from ingestion.storage import storage_errors
from processing.models import Run, RunTrigger
from processing.services.previews import file_preview
from processing.services.runs import file_enqueue

from ..errors import UnprocessableContent
from ..parsers import CSVBodyParser
from ..permissions import dataset_for
from ..serializers.runs import RunDetailSerializer
from ..serializers.uploads import PreviewSerializer, UploadFileSerializer, UploadOptionsSerializer
from ..throttling import UploadThrottle, UserThrottle
from ..uploads import announced_size_check, upload_source
from .base import StrictQueryMixin


class UploadView(StrictQueryMixin, APIView):
    parser_classes = [MultiPartParser, CSVBodyParser]
    throttle_classes = [UserThrottle, UploadThrottle]
    query_params_allowed = {"post": ("dry_run", "force", "encoding", "delimiter")}

    @extend_schema(
        tags=["uploads"],
        summary="Upload a CSV file (ingester)",
        description=(
            "Send the file as a multipart field `file`, or as the whole body with `Content-Type: text/csv`. "
            "The file is stored and a run is queued: the answer is **202** with the run, and its URL in "
            "`Location`; poll it until `finished` is true. With `?dry_run=true` the whole file is validated "
            "now and the answer is a preview (200); nothing is kept."
        ),
        parameters=[UploadOptionsSerializer],
        request={
            "multipart/form-data": UploadFileSerializer,
            "text/csv": OpenApiTypes.BINARY,
        },
        responses={
            202: RunDetailSerializer,
            200: OpenApiResponse(PreviewSerializer, description="The dry-run preview (`?dry_run=true`)."),
            413: OpenApiResponse(description="The file is larger than MAX_UPLOAD_SIZE."),
            415: OpenApiResponse(description="Not a CSV media type."),
            422: OpenApiResponse(
                description="The content is not text: a spreadsheet, an archive, a compressed file, an image, "
                "a PDF or binary data."
            ),
            503: OpenApiResponse(description="The data storage is read-only or not writable; nothing was kept."),
            507: OpenApiResponse(description="The data storage is full; nothing was kept."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        dataset = dataset_for(request.user, slug, action_role(DatasetAction.UPLOAD))
        options = UploadOptionsSerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        opts = options.validated_data
        announced_size_check(request)
        # A full or read-only data folder is a 507 / 503; raw_file_receive has removed any partial file.
        with storage_errors():
            return self._receive(request, dataset, opts)

    def _receive(self, request: Request, dataset: Dataset, opts: dict[str, Any]) -> Response:
        source, name = upload_source(request)
        if opts["dry_run"]:
            try:
                preview = file_preview(
                    dataset=dataset,
                    source=source,
                    original_name=name,
                    encoding=opts.get("encoding"),
                    delimiter=opts.get("delimiter"),
                    force=opts["force"],
                )
            except UnicodeError as exc:
                # e.g. a UTF-16 file without a byte-order mark: the bytes do not fit the encoding.
                raise UnprocessableContent(f"The file cannot be decoded: {exc}") from None
            except NotTextFile as exc:
                raise UnprocessableContent(exc.messages[0]) from None
            return Response(PreviewSerializer(dataclasses.asdict(preview)).data)
        try:
            run = file_enqueue(
                dataset=dataset,
                source=source,
                original_name=name,
                user=request.user,
                trigger=RunTrigger.API,
                force=opts["force"],
                encoding=opts.get("encoding"),
                delimiter=opts.get("delimiter"),
            )
        except NotTextFile as exc:
            raise UnprocessableContent(exc.messages[0]) from None
        run = Run.objects.select_related("dataset", "raw_file", "started_by").get(pk=run.pk)
        data = RunDetailSerializer(run, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})
