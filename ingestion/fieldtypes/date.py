"""``date``: ``2024-03-01`` (and the field's ``formats``), stored as ISO text."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from .base import ORDERED_OPERATORS, Converter, FieldError, FieldTypeSpec, is_iso

if TYPE_CHECKING:
    from ingestion.schema import FieldSpec

_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def date_converter(spec: FieldSpec) -> Converter:
    formats = tuple(spec.options.get("formats", ()))

    def parse(value: str) -> str:
        v = value.strip()
        try:
            return date.fromisoformat(v).isoformat()
        except ValueError:
            pass
        for fmt in formats:
            try:
                return datetime.strptime(v, fmt).date().isoformat()
            except ValueError:
                continue
        raise FieldError(
            f"{value!r} is not a date (expected YYYY-MM-DD{' or ' + ', '.join(formats) if formats else ''})"
        )

    return parse


def _bound(spec: FieldSpec, raw: Any) -> str:
    return date.fromisoformat(raw).isoformat()


DATE = FieldTypeSpec(
    name="date",
    label="Date",
    options=("formats",),
    converter=date_converter,
    ordered=True,
    bound_problem=lambda value: None if is_iso(value, with_time=False) else "must be an ISO 8601 date string",
    choice_fits=lambda choice: is_iso(choice, with_time=False),
    bound=_bound,
    sql_type="date",
    sqlite_type="TEXT",  # ISO text: text order is date order
    openapi={"type": "string", "format": "date"},
    openapi_filter={"type": "string", "format": "date"},
    operators=ORDERED_OPERATORS,
    filter_kind="text",
    arrow_type=("date32",),
    arrow_value=date.fromisoformat,
    infer_rank=4,
    infer_noun="dates (YYYY-MM-DD)",
    infer_fits=lambda value: bool(_ISO_DATE_RE.fullmatch(value)),  # not "20240101" nor week dates
)
