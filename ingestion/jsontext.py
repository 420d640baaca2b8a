"""JSON read and written without changing what it says.

Numbers stay the text they were sent as (``JsonNumber``), so a decimal such
as ``0.00000001`` or ``1234567890123456789.25`` reaches the validator as
written rather than rounded through a float; ``NaN`` and ``Infinity`` are
not JSON and are refused. Lines are written compactly, UTF-8, with any lone
surrogate (a ``"\\ud800"`` escape) kept as an escape so the line stays valid.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any


class JsonNumber(str):
    """A JSON number, kept as its source text."""

    __slots__ = ()

    def decimal(self) -> Decimal | None:
        try:
            return Decimal(self)
        except InvalidOperation:
            return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def loads(text: str | bytes) -> Any:
    """Parse JSON, numbers as ``JsonNumber``; ``ValueError`` for anything invalid."""
    return json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=_reject_constant)


def _string(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)  # escapes the lone surrogate: the line stays valid UTF-8 JSON
    return json.dumps(value, ensure_ascii=False)


def dumps(value: Any) -> str:
    """Compact JSON text of ``value``; ``JsonNumber`` is written as the number it holds."""
    if isinstance(value, JsonNumber):
        return str.__str__(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        return "{" + ",".join(_string(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, allow_nan=False)


def dumps_line(value: Any) -> bytes:
    """One NDJSON line."""
    return (dumps(value) + "\n").encode("utf-8")
