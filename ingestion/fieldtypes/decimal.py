"""``decimal``: an exact decimal number, stored as canonical text with its scale kept (``"1234.50"``)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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

MAX_DECIMAL_DIGITS = 40
# What a stored decimal looks like (also the OpenAPI pattern of its values).
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_CANONICAL_DECIMAL_RE = re.compile(r"-?(?:[1-9]\d*|0)(?:\.\d+)?", re.ASCII)


def decimal_converter(spec: FieldSpec) -> Converter:
    prep = number_prep(spec)

    def parse(value: str) -> str:
        v = prep(value)
        if not _DECIMAL_RE.fullmatch(v):
            raise FieldError(f"{value!r} is not a decimal number")
        # The pattern allows only a sign, digits and one point.
        if len(v) - (v[0] in "+-") - ("." in v) > MAX_DECIMAL_DIGITS:
            raise FieldError(f"{value!r} has more than {MAX_DECIMAL_DIGITS} digits")
        # Decimals are kept as canonical strings so no precision is lost.
        if _CANONICAL_DECIMAL_RE.fullmatch(v):
            return v  # already what format(Decimal(v), "f") would give
        return format(Decimal(v), "f")

    return parse


def decimal_key_text(value: str) -> str:
    """One text per number: "1.50", "1.5" and "01.5" all give "1.5"."""
    number = Decimal(value).normalize()
    return format(number, "f") if number != 0 else "0"


def _bound(spec: FieldSpec, raw: Any) -> Decimal:
    return Decimal(str(raw))


DECIMAL = FieldTypeSpec(
    name="decimal",
    label="Decimal",
    options=("thousands_separator", "decimal_separator"),
    converter=decimal_converter,
    numeric=True,
    ordered=True,
    bound_problem=number_bound_problem,
    choice_fits=number_choice_fits,
    # Parsed decimals are text; constraints and keys compare them as numbers ("1.5" is "1.50").
    comparable=Decimal,
    bound=_bound,
    key_text=decimal_key_text,
    sql_type="numeric",
    # SQLite's NUMERIC affinity would turn "1234.50" into the float 1234.5: keep the exact text.
    sqlite_type="TEXT",
    openapi={"type": "string", "pattern": DECIMAL_PATTERN, "description": "exact decimal as text"},
    openapi_filter={"type": "string", "pattern": DECIMAL_PATTERN},
    operators=ORDERED_OPERATORS,
    filter_kind="number",
    # No Parquet type: decimals stay exact text, their scale varies from value to value.
    arrow_type=None,
    infer_rank=2,
    infer_options=({}, {"thousands_separator": ","}),
    infer_noun="decimal numbers",
)
