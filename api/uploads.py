"""The upload door's checks on what arrives: size announced, media type, file signature.

They answer before anything is stored: 413 for a body announced larger than
``MAX_UPLOAD_SIZE`` (the limit is enforced again, exactly, while the file
streams in), 415 for a media type that is not CSV, 422 for content that is
recognisably not text (a spreadsheet, an archive, an image, a PDF).
"""

from __future__ import annotations

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import UnsupportedMediaType, ValidationError
from rest_framework.request import Request

from core.uploads import MULTIPART_SLACK, upload_too_large
from ingestion.dialect import binary_signature
from ingestion.services.raw_files import ByteSource

from .errors import PayloadTooLarge, UnprocessableContent

ACCEPTED_PART_TYPES = frozenset(
    {
        "",
        "application/csv",
        "application/octet-stream",
        "application/vnd.ms-excel",  # what Windows browsers send for .csv
        "text/comma-separated-values",
    }
)


def max_upload_size() -> int:
    return int(settings.DATAFLOW["MAX_UPLOAD_SIZE"])


def announced_length(request: Request) -> int:
    """The body size ``Content-Length`` announces (0 when absent); 400 when it is not a number of bytes."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw)
    except ValueError:
        raise ValidationError({"Content-Length": ["is not a number"]}) from None
    if length < 0:
        raise ValidationError({"Content-Length": ["must not be negative"]})
    return length


def announced_size_check(request: Request) -> None:
    """413 at once when Content-Length already says the body is too large."""
    length = announced_length(request)
    limit = max_upload_size()
    if length > limit + MULTIPART_SLACK:
        raise PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.")


class _Peeked:
    """A binary stream whose first bytes have been read for a look, then given back."""

    def __init__(self, source: ByteSource, head: bytes) -> None:
        self.source = source
        self.head = head

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size is None or size < 0:
                data, self.head = self.head + self.source.read(), b""
                return data
            data, self.head = self.head[:size], self.head[size:]
            if len(data) < size:
                data += self.source.read(size - len(data))
            return data
        return self.source.read(size)


def _signature_check(source: ByteSource) -> _Peeked:
    head = source.read(8) or b""
    if isinstance(head, str):
        raise ValidationError({"file": ["could not be read as bytes"]})
    if not head:
        raise ValidationError({"file": ["is empty"]})
    what = binary_signature(head)
    if what is not None:
        # The same words as the upload service's full check (ingestion.dialect.binary_sniff).
        raise UnprocessableContent(f"This is not a text CSV file (looks like {what}).")
    return _Peeked(source, head)


def upload_source(request: Request) -> tuple[_Peeked, str]:
    """The uploaded bytes and the client's file name, from a multipart ``file`` or a ``text/csv`` body."""
    data = request.data  # 415 for other media types, 400 for a malformed body
    too_large = upload_too_large(request)
    if too_large is not None:
        raise PayloadTooLarge(f"The file is larger than the limit of {too_large} bytes.")
    if request.content_type.startswith("multipart/form-data"):
        files = request.FILES
        if "file" not in files:
            raise ValidationError({"file": ["send the CSV as a multipart field named 'file'"]})
        if len(files) > 1 or len(files.getlist("file")) > 1:
            raise ValidationError({"file": ["send exactly one file"]})
        upload = files["file"]
        part_type = (upload.content_type or "").split(";")[0].strip().lower()
        if not (part_type in ACCEPTED_PART_TYPES or part_type.startswith("text/")):
            raise UnsupportedMediaType(part_type, detail=f"The file's media type {part_type!r} is not CSV.")
        return _signature_check(upload), upload.name or ""
    if isinstance(data, dict) or not hasattr(data, "read"):
        raise ValidationError({"file": ["the request body is empty; send the CSV as text/csv or multipart"]})
    return _signature_check(data), _body_file_name(request)


def _body_file_name(request: Request) -> str:
    header = request.META.get("HTTP_CONTENT_DISPOSITION", "")
    if not header:
        return ""
    _, params = parse_header_parameters(header)
    return str(params.get("filename", ""))
