"""Request bodies: size limits enforced while they stream in, and chunked bodies.

``UploadLimitHandler`` runs first among Django's upload handlers: once a
file passes ``MAX_UPLOAD_SIZE`` it stops the upload, which makes Django close
(and so delete) the temporary file the next handler was writing, and it marks
the request so the view can answer with a clear message.

``ChunkedBodyMiddleware`` wraps the WSGI application (``dataflow/wsgi.py``).
Django reads a body only as far as ``Content-Length`` says, and a body sent
with ``Transfer-Encoding: chunked`` has none, so Django (and DRF, which skips
its parsers when the length is 0) would see an empty body. gunicorn decodes
the chunks itself and marks the stream ``wsgi.input_terminated`` (it ends
where the body ends); this middleware then copies the body into a spooled
temporary file, stopping with 413 as soon as it passes the limit of the URL
it is sent to, and hands Django that file with its exact ``Content-Length``.
The large limits of the upload and push URLs apply only to a request that
carries credentials that hold (a valid access token, or the cookie of a
signed-in session); one without gets the small limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``), so an
anonymous client cannot make the server store a large body before its 401.
Everything after it (size checks, parsers, upload handlers) works as for any
other body. A server that does not decode chunks (Django's ``runserver``
wraps the socket in a stream limited to ``Content-Length``, i.e. 0) gets
411 Length Required, never a silently empty body.
"""

from __future__ import annotations

import errno
import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http.cookie import parse_cookie
from django.urls import Resolver404, resolve
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken

logger = logging.getLogger(__name__)

TOO_LARGE_ATTRIBUTE = "dataflow_upload_too_large"
# Room for the multipart envelope around an uploaded file.
MULTIPART_SLACK = 64 * 1024
COPY_CHUNK = 1 << 16
# The temporary folder is full (or the quota used up): 507; read-only or not writable: 503.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
UNAVAILABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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


def upload_body_limit() -> int:
    """The largest body an upload door reads: the file limit plus its multipart envelope."""
    return int(settings.DATAFLOW["MAX_UPLOAD_SIZE"]) + MULTIPART_SLACK


# The URLs that take large bodies (by URL name) and their limit; every other
# URL takes at most DATA_UPLOAD_MAX_MEMORY_SIZE, as Django does for forms.
LARGE_BODY_LIMITS: dict[str, Callable[[], int]] = {
    "api:dataset-uploads": upload_body_limit,
    "admin:processing_run_upload": upload_body_limit,
    "api:dataset-ingest": lambda: int(settings.PUSH_MAX_BYTES),
}


def small_body_limit() -> int:
    """The largest body of a URL without a large limit, and of any request without credentials."""
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or upload_body_limit())


def has_credentials(environ: dict[str, Any]) -> bool:
    """Whether the request carries credentials that hold: a valid access token, or a signed-in session.

    Checked before the body is read, so that a client without them (or with a
    made-up token or cookie) cannot make the server store a large body it will
    refuse with 401. The token's signature, expiry, issuer and audience are
    checked as the API checks them; the session must exist and hold a user.
    The view still authenticates the request as usual (an inactive user, a
    revoked token).
    """
    words = environ.get("HTTP_AUTHORIZATION", "").split()
    if words:
        if len(words) != 2 or words[0] not in jwt_settings.AUTH_HEADER_TYPES:
            return False
        try:
            AccessToken(words[1])
        except TokenError:
            return False
        return True
    session_key = parse_cookie(environ.get("HTTP_COOKIE", "")).get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return SESSION_KEY in store


def body_limit(path: str, environ: dict[str, Any] | None = None) -> int:
    """The largest body the URL at ``path`` accepts from a request with ``environ``.

    The large limits of the upload and push URLs apply only to requests that
    carry credentials; an anonymous request gets the small limit whatever its URL.
    """
    if environ is not None and not has_credentials(environ):
        return small_body_limit()
    try:
        name = resolve(path).view_name
    except Resolver404:
        name = ""
    if name in LARGE_BODY_LIMITS:
        return LARGE_BODY_LIMITS[name]()
    return small_body_limit()


def _is_chunked(environ: dict[str, Any]) -> bool:
    codings = [c.strip().lower() for c in environ.get("HTTP_TRANSFER_ENCODING", "").split(",")]
    return "chunked" in codings


def _answer(
    environ: dict[str, Any], start_response: Callable[..., Any], status: str, code: str, message: str
) -> list[bytes]:
    """An error in the API's shape under /api/, as plain text elsewhere.

    No ``Connection: close``: WSGI forbids hop-by-hop headers (runserver asserts
    it); gunicorn discards what is left of the body before the next request.
    """
    if environ.get("PATH_INFO", "").startswith("/api/"):
        body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
        content_type = "application/json"
    else:
        body = (message + "\n").encode()
        content_type = "text/plain; charset=utf-8"
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class _ClosingBody:
    """The application's response, closing the spooled request body when the server closes the response."""

    def __init__(self, response: Iterable[bytes], spool: Any) -> None:
        self.response = response
        self.spool = spool

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.response)

    def close(self) -> None:
        try:
            close = getattr(self.response, "close", None)
            if close is not None:
                close()
        finally:
            self.spool.close()


class ChunkedBodyMiddleware:
    """Give Django a chunked request body as a sized one (see the module docstring)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not _is_chunked(environ):
            return self.app(environ, start_response)
        if not environ.get("wsgi.input_terminated"):
            return _answer(
                environ,
                start_response,
                "411 Length Required",
                "length_required",
                "This server cannot read a chunked request body; send it with a Content-Length.",
            )
        # Checked before anything is read: an anonymous body is never stored past the small limit.
        limit = body_limit(environ.get("PATH_INFO", ""), environ)
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed with the response
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
        )
        try:
            # The spool moves to a file in the temporary folder once it passes the memory size.
            size = self._copy(environ["wsgi.input"], spool, limit)
        except _TooLarge:
            spool.close()
            return _answer(
                environ,
                start_response,
                "413 Request Entity Too Large",
                "too_large",
                f"The request body is larger than the limit of {limit} bytes.",
            )
        except OSError as exc:
            spool.close()
            logger.error("Could not receive a chunked request body: %s", exc)
            if exc.errno in FULL_ERRNOS:
                return _answer(
                    environ,
                    start_response,
                    "507 Insufficient Storage",
                    "insufficient_storage",
                    "The server has no room to receive this body now; nothing was kept. Try again later.",
                )
            if exc.errno in UNAVAILABLE_ERRNOS:
                return _answer(
                    environ,
                    start_response,
                    "503 Service Unavailable",
                    "storage_unavailable",
                    "The server cannot receive this body now (its temporary folder is not writable). Try again later.",
                )
            raise
        spool.seek(0)
        environ = {**environ, "wsgi.input": spool, "CONTENT_LENGTH": str(size)}
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        try:
            response = self.app(environ, start_response)
        except BaseException:
            spool.close()
            raise
        return _ClosingBody(response, spool)

    @staticmethod
    def _copy(source: Any, spool: Any, limit: int) -> int:
        size = 0
        while chunk := source.read(COPY_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            spool.write(chunk)
        return size


class _TooLarge(Exception):
    pass
