"""Rejected rows' errors grouped by field and by kind of message.

A rejected row keeps its errors as ``{field: [messages]}`` (``__row__`` for
the whole row). Messages quote the bad value (``'2024-13-01' is not a
date …``) and sometimes numbers that vary by row (``got 73``, ``first seen on
line 12``), and there is no separate code. A message's *kind* is the message
with every quoted value replaced by ``…`` and those numbers by ``#``: the
80 timestamps that failed the same way share one kind, whatever their values.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast

from .models import RejectedRow

ROW_FIELD = "__row__"
# A Python repr of a string, as converters quote values with ``{value!r}``.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# Numbers that vary from row to row (the rest, like a field's maximum length, belong to the rule).
_NUMBER = re.compile(r"\b(got|line) \d+")
_MASKS = ("…", "#")
# Pieces of a kind safe to look for in the JSON text of the errors on every
# database: ASCII, no quotes or backslashes (which JSON escapes).
_SAFE_PIECE = re.compile(r"[\x20-\x21\x23-\x26\x28-\x5b\x5d-\x7e]{3,}")


def error_kind(message: str) -> str:
    """The message without the values it quotes: what errors of one kind share."""
    return _NUMBER.sub(r"\1 #", _QUOTED.sub("…", message))


@dataclasses.dataclass
class ErrorGroup:
    """Errors of one kind on one field, with how many rows have them and one example."""

    field: str
    kind: str
    count: int = 0
    example: str = ""
    lines: list[int] = dataclasses.field(default_factory=list)


def error_groups(rows: QuerySet[RejectedRow], *, examples: int = 3) -> list[ErrorGroup]:
    """Count ``rows``' errors by field and kind, most frequent first.

    A row counts once per (field, kind) it has; a group keeps its first
    message as the example and the line numbers of its first ``examples`` rows.
    """
    groups: dict[tuple[str, str], ErrorGroup] = {}
    for line, errors in rows.order_by("run_id", "line_number").values_list("line_number", "errors").iterator(2000):
        seen: set[tuple[str, str]] = set()
        for name, messages in (errors or {}).items():
            for message in messages:
                key = (name, error_kind(str(message)))
                if key in seen:
                    continue
                seen.add(key)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = ErrorGroup(field=name, kind=key[1], example=str(message))
                group.count += 1
                if len(group.lines) < examples:
                    group.lines.append(line)
    return sorted(groups.values(), key=lambda g: (-g.count, g.field, g.kind))


def rows_with_error(rows: QuerySet[RejectedRow], *, field: str = "", kind: str = "") -> QuerySet[RejectedRow]:
    """``rows`` narrowed to those with an error on ``field`` and/or of ``kind``.

    The database compares the kind's fixed text (the parts between quoted
    values and numbers) with the field's messages, so the filter works on
    SQLite and PostgreSQL alike and pages like any other.
    """
    if field:
        rows = rows.filter(errors__has_key=field)
    if not kind:
        return rows
    target: Any = KeyTransform(field, "errors") if field else "errors"
    rows = rows.annotate(_error_text=Cast(target, output_field=TextField()))
    condition = Q()
    for piece in _kind_pieces(kind):
        condition &= Q(_error_text__contains=piece)
    return rows.filter(condition)


def _kind_pieces(kind: str) -> list[str]:
    pieces: list[str] = []
    for part in re.split("|".join(map(re.escape, _MASKS)), kind):
        pieces.extend(_SAFE_PIECE.findall(part))
    return pieces
