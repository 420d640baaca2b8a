"""Request body parsers.

``StrictJSONParser`` refuses what JSON allows but the database does not
store: NUL characters (Postgres text and jsonb reject them) and numbers
beyond a float's range (``1e400`` would be stored as ``Infinity``). Such
input is a 400, never a database error.

``CSVBodyParser`` hands a ``text/csv`` body to the view as a stream, so an
upload is never read into memory.
"""

from __future__ import annotations

import codecs
import io
import json
import math
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser

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


class StrictJSONParser(JSONParser):
    """JSON without NaN, Infinity, out-of-range numbers or NUL characters."""

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        # DRF reads the body as a stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check: apply it here.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"A JSON body may be at most {limit} bytes.")
        try:
            text = codecs.decode(raw, encoding)
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
        return stream


class JSONStreamParser(BaseParser):
    """An ``application/json`` body passed on unread, for views that stream it (push ingestion)."""

    media_type = "application/json"

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream if stream is not None else io.BytesIO()


class NDJSONStreamParser(JSONStreamParser):
    """An NDJSON body (one JSON value per line), passed on unread."""

    media_type = "application/x-ndjson"


class NDJSONAltStreamParser(NDJSONStreamParser):
    media_type = "application/ndjson"


class JSONLinesStreamParser(NDJSONStreamParser):
    media_type = "application/jsonl"
