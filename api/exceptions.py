"""One error shape for the whole API: ``{"error": {"code", "message", "details"}}``.

``exception_handler`` is DRF's ``EXCEPTION_HANDLER``; the ``handler*``
functions are the project's 400/403/404/500 views, answering JSON under
``/api/`` and Django's usual pages elsewhere.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import TemplateDoesNotExist, loader
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from ingestion.services.raw_files import UploadTooLarge
from ingestion.storage import StorageFull
from ingestion.storage import StorageUnavailable as StorageNotWritable
from processing.services.broker import BrokerUnavailable

from .errors import InsufficientStorage, PayloadTooLarge, QueueUnavailable, StorageUnavailable

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def django_validation_details(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A Django ``ValidationError`` as ``{field: [messages]}`` (``non_field_errors`` when it has no fields)."""
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
    return {"non_field_errors": [str(m) for m in exc.messages]}


def _first_message(details: Any) -> str | None:
    if isinstance(details, str):
        return details
    if isinstance(details, list):
        for item in details:
            found = _first_message(item)
            if found:
                return found
    if isinstance(details, dict):
        for key, value in details.items():
            found = _first_message(value)
            if found:
                # Messages that already say where they belong ("schema: …", "fields[0]: …") keep their words.
                return found if key == "non_field_errors" or found.startswith(key) else f"{key}: {found}"
    return None


def _plain(details: Any) -> Any:
    """ErrorDetail strings as plain strings, recursively."""
    if isinstance(details, dict):
        return {str(k): _plain(v) for k, v in details.items()}
    if isinstance(details, list):
        return [_plain(v) for v in details]
    return str(details)


def _as_api_exception(exc: Exception) -> exceptions.APIException | None:
    """Translate the non-DRF exceptions the API can meet into DRF ones."""
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, BrokerUnavailable):
        return QueueUnavailable(exc.public_message, run_id=exc.run_id, wait=exc.retry_after)
    if isinstance(exc, UploadTooLarge):
        return PayloadTooLarge(str(exc.messages[0]))
    if isinstance(exc, StorageFull):
        return InsufficientStorage(str(exc))
    if isinstance(exc, StorageNotWritable):
        return StorageUnavailable(str(exc))
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge("The request body is larger than the server accepts for this endpoint.")
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return exceptions.ValidationError({"non_field_errors": [str(exc)]})
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(django_validation_details(exc))
    if isinstance(exc, TokenError):
        return InvalidToken(str(exc))
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler: every known error in the one shape; anything else stays a 500."""
    api_exc = _as_api_exception(exc)
    if api_exc is None:
        return None
    headers: dict[str, str] = {}
    # Set by DRF's APIView on authentication failures, where a scheme can be named.
    auth_header = getattr(api_exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(api_exc, "wait", None)
    if wait:
        headers["Retry-After"] = str(int(wait))

    detail = api_exc.detail
    code = api_exc.default_code
    details: Any = {}
    if isinstance(api_exc, exceptions.ValidationError):
        details = _plain(detail if isinstance(detail, dict) else {"non_field_errors": detail})
        message = _first_message(details) or "The request is not valid."
    elif isinstance(detail, dict):
        # simplejwt: {"detail": …, "code": …, "messages": […]}
        code = str(detail.get("code", code))
        message = str(detail.get("detail", api_exc.default_detail))
        details = {k: _plain(v) for k, v in detail.items() if k not in ("detail", "code")}
    else:
        code = getattr(detail, "code", None) or code
        message = str(detail)
    if wait:
        details = {"retry_after_seconds": int(wait), **getattr(api_exc, "extra_details", {})}
    set_rollback()
    return Response(error_body(str(code), message, details), status=api_exc.status_code, headers=headers)


# --- Project-level handlers (dataflow/urls.py) ------------------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _error_page(template_name: str, status: int, title: str) -> HttpResponse:
    """Django's error page for ``status``, without the CSRF decorator of ``django.views.defaults``.

    That decorator runs the CSRF check, which reads ``request.POST``: when the
    error came from reading the form (Django refuses a form that is not UTF-8
    with BadRequest, every time it is read), the error page would fail the
    same way and the client would get a bare 500 with chained tracebacks.
    The page renders no request context, so it needs no CSRF token.
    """
    try:
        body = loader.get_template(template_name).render()
    except TemplateDoesNotExist:
        body = defaults.ERROR_PAGE_TEMPLATE % {"title": title, "details": ""}
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "The request is not valid."), status=400)
    return _error_page("400.html", 400, "Bad Request (400)")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("permission_denied", "You do not have permission to do this."), status=403)
    # Django always passes the exception; the default is for direct calls.
    return defaults.permission_denied(request, exception or DjangoPermissionDenied())


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            error_body("server_error", "The server could not complete the request; the error has been logged."),
            status=500,
        )
    return _error_page("500.html", 500, "Server Error (500)")
