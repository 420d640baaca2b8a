"""Request body parsers.

``StrictJSONParser`` refuses what JSON allows but the database does not
store: NUL characters (Postgres text and jsonb reject them) and numbers
beyond a float's range (``1e400`` would be stored as ``Infinity``). Such
input is a 400, never a database error.

``CSVBodyParser`` hands a ``text/csv`` body to the view as a stream, so an
upload is never read into memory.

A body's ``charset`` must be a text encoding (``core.charsets`` answers
415 before any parser runs otherwise); JSON bodies narrow that to UTF-8,
UTF-16 and UTF-32, NDJSON bodies to UTF-8. The body is decoded with
``bytes.decode``, which only accepts text encodings, never with
``codecs.decode``, which would also decompress ``bz2`` or ``zlib`` data.
"""

from __future__ import annotations

import io
import json
import math
from typing import IO, Any

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError, UnsupportedMediaType, ValidationError
from rest_framework.parsers import BaseParser, JSONParser

from core.charsets import UNICODE_CHARSETS, charset_name, charset_refusal
from core.encodings import UTF8_ENCODINGS

from .errors import PayloadTooLarge

MAX_JSON_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def check_json_value(value: Any, depth: int = 0) -> None:
    """Raise ``ValueError`` for NUL characters or nesting deeper than ``MAX_JSON_DEPTH``."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nesting deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings must not contain NUL characters (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json_value(key, depth + 1)
            check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, depth + 1)


def body_charset(
    media_type: str | None, allowed: frozenset[str] | None = None, *, what: str = "This body", expected: str = "UTF-8"
) -> str:
    """The canonical charset a body declares in ``media_type`` (UTF-8 when none), or 415.

    Refuses what is not a text encoding, and, when ``allowed`` is given,
    every encoding outside it.
    """
    media_type = media_type or ""
    _, params = parse_header_parameters(media_type)
    declared = params.get("charset")
    if declared is None:
        return "utf-8"
    refusal = charset_refusal(declared)
    if refusal is not None:
        raise UnsupportedMediaType(media_type, detail=refusal)
    name = charset_name(declared)
    assert name is not None  # charset_refusal said it is a text encoding
    if allowed is not None and name not in allowed:
        raise UnsupportedMediaType(media_type, detail=f"{what} must be {expected}; charset {declared[:40]!r} is not.")
    return name


JSON_CHARSETS = UNICODE_CHARSETS
JSON_EXPECTED = "UTF-8 (or UTF-16 / UTF-32)"
# NDJSON is UTF-8 by definition (and stored as sent).
NDJSON_CHARSETS = UTF8_ENCODINGS


def body_stream(data: Any, *, hint: str) -> IO[bytes]:
    """The stream a streaming parser gave ``request.data``, or 400 when the body was empty.

    DRF does not call a parser at all for an empty body (no ``Content-Length``,
    or 0, as with a chunked body the server did not decode) and gives ``{}``.
    """
    if isinstance(data, dict) or not hasattr(data, "read"):
        raise ValidationError({"non_field_errors": [f"The request body is empty; {hint}."]})
    return data


class StrictJSONParser(JSONParser):
    """JSON without NaN, Infinity, out-of-range numbers or NUL characters."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = body_charset(media_type, JSON_CHARSETS, what="A JSON body", expected=JSON_EXPECTED)
        # DRF reads the body as a stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check: apply it here.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"A JSON body may be at most {limit} bytes.")
        try:
            # A text encoding never yields more characters than there are bytes: the limit holds.
            text = raw.decode(encoding)
            data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
            check_json_value(data)
        except RecursionError:
            raise ParseError("JSON parse error - nesting too deep") from None
        except (ValueError, LookupError) as exc:  # JSONDecodeError, UnicodeDecodeError; unknown charset
            raise ParseError(f"JSON parse error - {exc}") from None
        return data


class CSVBodyParser(BaseParser):
    """A ``text/csv`` request body, passed on unread as a binary stream."""

    media_type = "text/csv"

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        body_charset(media_type)  # any text encoding: the file's encoding is detected or given later
        return stream if stream is not None else io.BytesIO()


class JSONStreamParser(BaseParser):
    """An ``application/json`` body passed on unread, for views that stream it (push ingestion)."""

    media_type = "application/json"
    charsets: frozenset[str] = JSON_CHARSETS
    what = "A JSON body"
    expected = JSON_EXPECTED

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        body_charset(media_type, self.charsets, what=self.what, expected=self.expected)
        return stream if stream is not None else io.BytesIO()


class NDJSONStreamParser(JSONStreamParser):
    """An NDJSON body (one JSON value per line), passed on unread."""

    media_type = "application/x-ndjson"
    charsets = NDJSON_CHARSETS
    what = "An NDJSON body"
    expected = "UTF-8"


class NDJSONAltStreamParser(NDJSONStreamParser):
    media_type = "application/ndjson"


class JSONLinesStreamParser(NDJSONStreamParser):
    media_type = "application/jsonl"
