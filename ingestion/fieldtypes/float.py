"""``float``: a binary floating-point number; decimals and exponents (``1.5e3``), not ``inf``/``nan``."""

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

_FLOAT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def float_converter(spec: FieldSpec) -> Converter:
    prep = number_prep(spec)

    def parse(value: str) -> float:
        v = prep(value)
        if not _FLOAT_RE.fullmatch(v):
            raise FieldError(f"{value!r} is not a number")
        number = float(v)
        if number in (float("inf"), float("-inf")):
            raise FieldError(f"{value!r} is too large")
        return number

    return parse


FLOAT = FieldTypeSpec(
    name="float",
    label="Float",
    options=("thousands_separator", "decimal_separator"),
    converter=float_converter,
    numeric=True,
    ordered=True,
    bound_problem=number_bound_problem,
    choice_fits=number_choice_fits,
    sql_type="double precision",
    sqlite_type="REAL",
    openapi={"type": "number"},
    openapi_filter={"type": "number"},
    operators=ORDERED_OPERATORS,
    filter_kind="number",
    arrow_type=("float64",),
    infer_rank=3,
    infer_noun="numbers",
    good_key=False,
)
