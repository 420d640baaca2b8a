"""``datetime``: ISO 8601 date-times, stored as UTC text with a 6-digit fraction."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .base import ORDERED_OPERATORS, Converter, FieldError, FieldTypeSpec, is_iso

if TYPE_CHECKING:
    from ingestion.schema import FieldSpec

_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with a fixed 6-digit fraction, so text order is time order."""
    offset = moment.utcoffset()
    if offset:
        moment -= offset  # wall-clock arithmetic: the UTC time, still labelled with the old offset
    # "YYYY-MM-DDTHH:MM:SS.ffffff" is 26 characters; the offset after it is dropped.
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def datetime_converter(spec: FieldSpec) -> Converter:
    formats = tuple(spec.options.get("formats", ()))
    zone = zoneinfo.ZoneInfo(spec.options.get("default_timezone", "UTC"))

    def parse(value: str) -> str:
        v = value.strip()
        moment: datetime | None = None
        try:
            moment = datetime.fromisoformat(v)
        except ValueError:
            for fmt in formats:
                try:
                    moment = datetime.strptime(v, fmt)
                    break
                except ValueError:
                    continue
        if moment is None:
            raise FieldError(f"{value!r} is not an ISO 8601 date-time")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        try:
            return utc_text(moment)
        except OverflowError:
            raise FieldError(f"{value!r} is out of range once converted to UTC") from None

    return parse


def _bound(spec: FieldSpec, raw: Any) -> datetime:
    moment = datetime.fromisoformat(raw)
    zone = zoneinfo.ZoneInfo(spec.options.get("default_timezone", "UTC"))
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


DATETIME = FieldTypeSpec(
    name="datetime",
    label="Datetime",
    options=("formats", "default_timezone"),
    converter=datetime_converter,
    ordered=True,
    bound_problem=lambda value: None if is_iso(value, with_time=True) else "must be an ISO 8601 datetime string",
    choice_fits=lambda choice: is_iso(choice, with_time=True),
    # Parsed date-times are text; constraints compare them as instants.
    comparable=datetime.fromisoformat,
    bound=_bound,
    sql_type="timestamptz",
    sqlite_type="TEXT",  # the stored UTC text: text order is time order
    openapi={"type": "string", "format": "date-time", "description": "UTC, 6-digit fraction"},
    openapi_filter={"type": "string", "format": "date-time"},
    operators=ORDERED_OPERATORS,
    filter_kind="text",
    arrow_type=("timestamp", "us", "UTC"),
    arrow_value=datetime.fromisoformat,
    infer_rank=5,
    infer_options=({"default_timezone": "UTC"},),
    infer_noun="ISO 8601 date-times",
    infer_fits=lambda value: bool(_ISO_DATE_RE.match(value)),
)
