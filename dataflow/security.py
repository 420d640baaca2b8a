"""Request and response hardening that applies to every URL.

* ``RequestCharsetMiddleware``: a request may only declare a text encoding
  (``core.encodings.TEXT_ENCODINGS``) as its ``charset``. Python's codec
  registry also holds codecs that are not text encodings at all
  (``bz2_codec``, ``zlib_codec``, ``base64``, ``hex``, ``rot13``…): decoding a
  body with one of them decompresses or rewrites it *after* its size was
  checked, so an 845-byte body could become a gigabyte; ``undefined`` fails to
  decode anything, the query string included. A form body
  (``application/x-www-form-urlencoded``, ``multipart/form-data``) must be
  UTF-8, the only charset Django reads forms in. Such a request is answered
  415 before anything reads the query string or the body (Django's form
  parsing, the CSRF check, DRF's parsers). The JSON parsers narrow the rule
  further to the Unicode encodings (``api/parsers.py``).
* ``ContentSecurityPolicyMiddleware``: a Content-Security-Policy header on
  every response. Pages only run scripts and load styles and images from this
  site; nothing may frame them. The API docs (``/api/docs/``, ``/api/redoc/``)
  get a policy of their own, ``DOCS_POLICY``, which allows no other host either.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.http import parse_header_parameters

from core.charsets import charset_refusal

# Swagger UI (/api/docs/) and ReDoc (/api/redoc/) are served from our own
# static files (drf-spectacular-sidecar), so the docs allow no host but this
# one. Scripts: 'self' only. Swagger UI's start-up script is not inline: the
# split view (dataflow/urls.py) serves it from /api/docs/?script, which beats
# a nonce (it would need our own copy of drf-spectacular's template and a
# per-request value) and a hash (the script embeds the CSRF token, so it
# differs per visitor). Styles keep 'unsafe-inline': both templates carry a
# small <style> block and both UIs set style attributes from JavaScript, as
# the site-wide policy already allows. ReDoc builds its search index in a web
# worker made from a blob: URL by its own (same-site) script, hence
# worker-src blob:; without it search finds nothing. ReDoc's bundle also
# shows its vendor's logo from their CDN; img-src keeps the browser from
# fetching it (ReDoc then hides the image).
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = ("/api/docs/", "/api/redoc/")

API_PREFIX = "/api/"


def unsupported_media_type(request: HttpRequest, message: str) -> HttpResponse:
    """A 415 in the API's error shape under /api/, as plain text elsewhere."""
    if request.path.startswith(API_PREFIX):
        body = {"error": {"code": "unsupported_media_type", "message": message, "details": {}}}
        return JsonResponse(body, status=415)
    return HttpResponse(message + "\n", status=415, content_type="text/plain; charset=utf-8")


class RequestCharsetWSGIMiddleware:
    """The charset rule at the WSGI layer (``dataflow/wsgi.py``), before Django builds the request.

    Django's request object decodes the query string with the declared
    charset as soon as it is built, before any middleware runs: with
    ``charset=undefined`` that raises outside every error handler (a bare 500).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        media_type, params = parse_header_parameters(environ.get("CONTENT_TYPE", ""))
        refusal = charset_refusal(params.get("charset"), media_type.lower())
        if refusal is None:
            return self.app(environ, start_response)
        if environ.get("PATH_INFO", "").startswith(API_PREFIX):
            body = json.dumps({"error": {"code": "unsupported_media_type", "message": refusal, "details": {}}})
            content_type = "application/json"
        else:
            body, content_type = refusal + "\n", "text/plain; charset=utf-8"
        data = body.encode()
        start_response(
            "415 Unsupported Media Type", [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        )
        return [data]


class RequestCharsetMiddleware:
    """415 for a body whose declared charset is not a text encoding, before anything decodes it.

    The same rule as ``RequestCharsetWSGIMiddleware``, for requests that do not
    come through ``dataflow.wsgi`` (ASGI, the test client).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = charset_refusal((request.content_params or {}).get("charset"), (request.content_type or "").lower())
        if refusal is not None:
            return unsupported_media_type(request, refusal)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            docs = request.path_info.startswith(DOCS_PATHS)  # without a SCRIPT_NAME prefix
            response["Content-Security-Policy"] = DOCS_POLICY if docs else settings.CONTENT_SECURITY_POLICY
        return response
