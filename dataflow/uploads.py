"""Upload size enforced while the request streams in, before any temporary file grows.

``UploadLimitHandler`` runs first among Django's upload handlers: once a
file passes ``MAX_UPLOAD_SIZE`` it stops the upload, which makes Django close
(and so delete) the temporary file the next handler was writing, and it marks
the request so the view can answer with a clear message.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

TOO_LARGE_ATTRIBUTE = "dataflow_upload_too_large"


class UploadLimitHandler(FileUploadHandler):
    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limit = int(settings.DATAFLOW["MAX_UPLOAD_SIZE"])
        if start + len(raw_data) > limit:
            setattr(self.request, TOO_LARGE_ATTRIBUTE, limit)
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> Any:
        return None  # the next handler builds the file


def upload_too_large(request: Any) -> int | None:
    """The limit an upload in this request went over, or None."""
    return getattr(getattr(request, "_request", request), TOO_LARGE_ATTRIBUTE, None)
