"""Reading a value at a dotted path of a decoded JSON document (records, cursors, next links)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What ``value_at`` answers when the path leads nowhere (``None`` is a JSON null).
MISSING: Any = object()


def value_at(data: Any, path: str) -> Any:
    """The value at a dotted path (list items by index), or ``MISSING``."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return MISSING
    return data
