"""Structured logs: one JSON object per line, with the request id, user and run id.

``RequestIdMiddleware`` takes ``X-Request-ID`` from the request (when it
looks sane) or makes one, echoes it in the response, and keeps it in a
context variable; the pipeline does the same with the run id. The
``ContextFilter`` copies both onto every log record, so a line written
anywhere while a request or run is handled carries them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

from core.context import client_ip_var
from processing.logcontext import run_id_var

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
request_var: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("request", default=None)

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CONTEXT_KEYS = {"request_id", "user", "run_id", "request", "server_time"}
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _username(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # Only a user that authentication already resolved: never trigger a lookup from logging.
    user = request.__dict__.get("user") or request.__dict__.get("_cached_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.get_username()


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs failed requests after the middleware has returned, with
        # the request attached: prefer that request when there is one.
        request = getattr(record, "request", None) or request_var.get()
        record.request_id = getattr(request, "request_id", None) or request_id_var.get()
        record.run_id = run_id_var.get()
        record.user = _username(request if isinstance(request, HttpRequest) else None)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "user", "run_id"):
            value = getattr(record, key, None)
            if value is not None:
                payload[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in _CONTEXT_KEYS:
                payload[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """Readable lines for development, with the ids when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [f"{k}={getattr(record, k)}" for k in ("request_id", "user", "run_id") if getattr(record, k, None)]
        return f"{line} [{' '.join(tags)}]" if tags else line


class RequestIdMiddleware:
    header = "X-Request-ID"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(self.header, "")
        request_id = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # our own attribute on Django's request
        id_token = request_id_var.set(request_id)
        request_token = request_var.set(request)
        ip_token = client_ip_var.set(request.META.get("REMOTE_ADDR"))
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(id_token)
            request_var.reset(request_token)
            client_ip_var.reset(ip_token)
        response[self.header] = request_id
        return response
