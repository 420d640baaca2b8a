"""Cursor (keyset) pagination: no COUNT(*), no OFFSET, stable under inserts.

``CursorPage`` serves the lists ordered by a model column (runs, rejected
rows, datasets, grants). ``RecordCursor`` serves records, whose ordering
can be any schema field; its positions come from ``processing.record_queries``.
A page size or cursor that cannot be used is a 400, never a silent clamp.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from processing.record_queries import RecordOrdering, position_value_parse, record_position, records_after

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
PAGE_SIZE_PARAM = "page_size"
CURSOR_PARAM = "cursor"
_DIGITS = re.compile(r"^[0-9]{1,7}$")
PAGE_SIZE_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}


def page_size_from(request: Request) -> int:
    raw = request.query_params.get(PAGE_SIZE_PARAM)
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not _DIGITS.match(raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError({PAGE_SIZE_PARAM: [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]})
    return int(raw)


def _bad_cursor() -> ValidationError:
    return ValidationError({CURSOR_PARAM: ["is not a cursor from this list; start again without it"]})


def _id_position(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", value):
        raise ValueError(value)
    return int(value)


def _slug_position(value: str) -> str:
    if not re.fullmatch(r"[-a-zA-Z0-9_]{1,64}", value):
        raise ValueError(value)
    return value


class CursorPage(CursorPagination):
    """DRF's cursor pagination with strict page sizes and cursors."""

    page_size = DEFAULT_PAGE_SIZE
    max_page_size = MAX_PAGE_SIZE
    page_size_query_param = PAGE_SIZE_PARAM
    ordering = "-id"
    position_type: Callable[[str], Any] = staticmethod(_id_position)

    def get_page_size(self, request: Request) -> int:
        return page_size_from(request)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == PAGE_SIZE_PARAM:
                parameter["schema"] = PAGE_SIZE_SCHEMA
        return parameters

    def decode_cursor(self, request: Request) -> Any:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise _bad_cursor() from None
        if cursor is not None and cursor.position is not None:
            try:
                # DRF's stubs type the position as int; decoded from the cursor, it is text.
                self.position_type(cursor.position)  # type: ignore[arg-type]
            except ValueError:
                raise _bad_cursor() from None
        return cursor


class AscendingIdPage(CursorPage):
    ordering = "id"


class SlugPage(CursorPage):
    ordering = "slug"
    position_type = staticmethod(_slug_position)


def _json_position(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    return value


class RecordCursor:
    """Keyset pages of records: ``{"next", "previous", "results"}``.

    The cursor is opaque to clients (base64 of JSON): the ordering it was
    made for, the sort value and key of the record it starts after, and the
    direction. A cursor used with another ordering is refused.
    """

    def __init__(self, request: Request, ordering: RecordOrdering) -> None:
        self.request = request
        self.ordering = ordering
        self.page_size = page_size_from(request)
        self.next: str | None = None
        self.previous: str | None = None

    def _decode(self) -> tuple[tuple[Any, str], bool] | None:
        raw = self.request.query_params.get(CURSOR_PARAM)
        if raw is None:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4)))
            if not isinstance(data, dict) or set(data) != {"o", "v", "k", "b"}:
                raise ValueError("shape")
            if data["o"] != self.ordering.text:
                raise ValidationError(
                    {CURSOR_PARAM: [f"was made for ordering {data['o']!r}; keep the ordering while paging"]}
                )
            key = data["k"]
            if not isinstance(key, str) or len(key) > 512 or "\x00" in key or not isinstance(data["b"], bool):
                raise ValueError("key")
            value = position_value_parse(self.ordering, data["v"])
            if isinstance(value, str) and "\x00" in value:
                raise ValueError("value")
        except (ValueError, TypeError, UnicodeError, binascii.Error, RecursionError):
            raise _bad_cursor() from None
        return (value, key), data["b"]

    def _link(self, record: Any, backwards: bool) -> str:
        value, key = record_position(record, self.ordering)
        payload = {"o": self.ordering.text, "v": _json_position(value), "k": key, "b": backwards}
        token = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        return replace_query_param(self.request.build_absolute_uri(), CURSOR_PARAM, token)

    def paginate(self, queryset_for: Callable[[bool], QuerySet[Any]]) -> list[Any]:
        """One page; ``queryset_for(backwards)`` gives the filtered, ordered records."""
        cursor = self._decode()
        size = self.page_size
        if cursor is None:
            rows = list(queryset_for(False)[: size + 1])
            if len(rows) > size:
                rows = rows[:size]
                self.next = self._link(rows[-1], backwards=False)
            return rows
        position, backwards = cursor
        rows = list(records_after(queryset_for(backwards), self.ordering, position, backwards=backwards)[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        if backwards:
            rows.reverse()
            if rows:
                self.next = self._link(rows[-1], backwards=False)
                if more:
                    self.previous = self._link(rows[0], backwards=True)
            return rows
        if rows:
            self.previous = self._link(rows[0], backwards=True)
            if more:
                self.next = self._link(rows[-1], backwards=False)
        else:
            # Past the end: the previous page is whatever lies before this position.
            self.previous = remove_query_param(self.request.build_absolute_uri(), CURSOR_PARAM)
        return rows

    def response_data(self, results: list[Any]) -> dict[str, Any]:
        return {"next": self.next, "previous": self.previous, "results": results}
