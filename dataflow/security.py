"""Request and response hardening that applies to every URL.

* ``RequestCharsetMiddleware``: a request body may only declare a text
  encoding as its ``charset``. Python's codec registry also holds codecs that
  are not text encodings at all (``bz2_codec``, ``zlib_codec``, ``base64``,
  ``hex``, ``rot13``, ``uu``, ``quopri``…); decoding a body with one of them
  decompresses or rewrites it *after* its size was checked, so an 845-byte
  body could become a gigabyte. Such a request is answered 415 before
  anything reads the body (Django's form parsing, the CSRF check, DRF's
  parsers). The JSON parsers narrow the rule further to the Unicode encodings
  (``api/parsers.py``).
* ``ContentSecurityPolicyMiddleware``: a Content-Security-Policy header on
  every response. Pages only run scripts and load styles and images from this
  site; nothing may frame them. The Swagger UI page (``/api/docs/``) loads its
  scripts from drf-spectacular's CDN and starts with an inline script, so that
  one page gets a policy that allows exactly that.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

SWAGGER_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://cdn.jsdelivr.net; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)

# Python calls these text encodings, but they turn escape sequences or
# host-name syntax into text rather than encode it; no client writes a body in them.
ESCAPING_CODECS = frozenset({"idna", "punycode", "raw-unicode-escape", "unicode-escape"})
# The Unicode encodings (RFC 8259 asks for UTF-8; UTF-16 and UTF-32 are what
# JSON parsers have always detected). ASCII is a subset of UTF-8.
UNICODE_CHARSETS = frozenset(
    {"utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "ascii"}
)
API_PREFIX = "/api/"


def charset_name(charset: str) -> str | None:
    """The canonical name of ``charset`` when it is a text encoding a body can be written in, else None.

    Decoding bytes with such an encoding never yields more characters than
    there were bytes, so it cannot grow a body past its size limit.
    """
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):  # ValueError: e.g. a NUL in the name
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in ESCAPING_CODECS:
        return None
    return info.name


def charset_refusal(charset: str | None) -> str | None:
    """Why a request body's ``charset`` parameter is refused, or None when it is acceptable."""
    if charset is None or charset_name(charset) is not None:
        return None
    return f"The charset {charset[:40]!r} is not a supported text encoding; send the body as UTF-8."


def unsupported_media_type(request: HttpRequest, message: str) -> HttpResponse:
    """A 415 in the API's error shape under /api/, as plain text elsewhere."""
    if request.path.startswith(API_PREFIX):
        body = {"error": {"code": "unsupported_media_type", "message": message, "details": {}}}
        return JsonResponse(body, status=415)
    return HttpResponse(message + "\n", status=415, content_type="text/plain; charset=utf-8")


class RequestCharsetMiddleware:
    """415 for a body whose declared charset is not a text encoding, before anything decodes it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = charset_refusal((request.content_params or {}).get("charset"))
        if refusal is not None:
            return unsupported_media_type(request, refusal)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            docs = request.path.startswith("/api/docs")
            response["Content-Security-Policy"] = SWAGGER_POLICY if docs else settings.CONTENT_SECURITY_POLICY
        return response
