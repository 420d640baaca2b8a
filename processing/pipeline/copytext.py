"""Values as PostgreSQL's COPY text format spells them (one row a line, tab between values).

The validators render each valid row's line for the load's staging table
once, where the row is validated; the loader then sends a chunk's lines as
they are, with no per-value work on its side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# NULL, and what a value's text must escape (a backslash first, so the others stay escaped once).
COPY_NULL = "\\N"
COPY_SPECIALS = ["\\", "\t", "\n", "\r"]
COPY_ESCAPED = ["\\\\", "\\t", "\\n", "\\r"]
_ESCAPES = str.maketrans(dict(zip(COPY_SPECIALS, COPY_ESCAPED, strict=True)))


def copy_escape(text: str) -> str:
    """A text value as COPY reads it back exactly."""
    return text.translate(_ESCAPES)


def copy_escapes(texts: Sequence[str]) -> list[str]:
    """``copy_escape`` of each text, in one pass over all of them (none may hold a NUL)."""
    joined = "\x00".join(texts)
    escaped = joined.translate(_ESCAPES)
    return escaped.split("\x00") if len(escaped) != len(joined) else list(texts)


def copy_value(value: Any) -> str:
    """A clean value (as validation gives it: None, bool, int, float or text) in COPY's text format."""
    if value is None:
        return COPY_NULL
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # what json.dumps and the processed file write
    if isinstance(value, int):
        return str(value)
    return copy_escape(value)


def copy_line(key: str, line: int, values: list[Any]) -> str:
    """A valid row's line for the staging table: ``_key``, ``_source_line``, then its fields in schema order."""
    return "\t".join([copy_escape(key), str(line), *map(copy_value, values)]) + "\n"
