"""The API's own error types, beyond DRF's (kept apart from the handler to avoid an import cycle)."""

from __future__ import annotations

from rest_framework import exceptions, status


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class UnprocessableContent(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The content cannot be processed."
    default_code = "unprocessable"


class InsufficientStorage(exceptions.APIException):
    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_detail = "The server has no space left to store this."
    default_code = "insufficient_storage"


class StorageUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The server cannot store files right now."
    default_code = "storage_unavailable"


class QueueUnavailable(exceptions.APIException):
    """The job queue refused a run's task: the run is kept, queued, and is sent when the queue is back."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The job queue is unavailable."
    default_code = "queue_unavailable"

    def __init__(self, detail: str, *, run_id: int, wait: int) -> None:
        super().__init__(detail)
        self.wait = wait
        self.extra_details = {"run_id": run_id, "run_status": "queued"}
