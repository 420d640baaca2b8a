"""``integer``: a whole number in the 64-bit range (``12``, ``+12``, ``12.0``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .base import (
    ORDERED_OPERATORS,
    Converter,
    FieldError,
    FieldTypeSpec,
    number_bound_problem,
    number_choice_fits,
    number_prep,
)

if TYPE_CHECKING:
    from ingestion.schema import FieldSpec

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_INT_RE = re.compile(r"[+-]?\d+(?:\.0*)?", re.ASCII)


def integer_converter(spec: FieldSpec) -> Converter:
    prep = number_prep(spec)

    def parse(value: str) -> int:
        if value.isascii() and value.isdigit() and len(value) < 19:
            return int(value)  # the common case, without the general checks
        v = prep(value)
        if not _INT_RE.fullmatch(v):
            raise FieldError(f"{value!r} is not a whole number")
        whole = v.split(".", 1)[0]
        if len(whole.lstrip("+-").lstrip("0")) > 19:
            raise FieldError(f"{value!r} is out of range for a 64-bit integer")
        number = int(whole)
        if not INT_MIN <= number <= INT_MAX:
            raise FieldError(f"{value!r} is out of range for a 64-bit integer")
        return number

    return parse


INTEGER = FieldTypeSpec(
    name="integer",
    label="Integer",
    options=("thousands_separator",),
    converter=integer_converter,
    numeric=True,
    ordered=True,
    bound_problem=number_bound_problem,
    choice_fits=lambda choice: number_choice_fits(choice, whole=True),
    sql_type="bigint",
    sqlite_type="INTEGER",
    openapi={"type": "integer", "format": "int64"},
    openapi_filter={"type": "integer", "format": "int64"},
    operators=ORDERED_OPERATORS,
    filter_kind="number",
    arrow_type=("int64",),
    infer_rank=1,
    infer_options=({}, {"thousands_separator": ","}),
    infer_noun="whole numbers",
    # "12.0" is accepted by integer fields but reads as a decimal.
    infer_fits=lambda value: "." not in value,
)
