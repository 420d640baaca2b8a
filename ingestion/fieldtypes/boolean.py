"""``boolean``: ``true/false, yes/no, 1/0, t/f, y/n`` in any case, stored as ``true``/``false``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Converter, FieldError, FieldTypeSpec

if TYPE_CHECKING:
    from ingestion.schema import FieldSpec

TRUE_WORDS = frozenset({"true", "yes", "1", "t", "y"})
FALSE_WORDS = frozenset({"false", "no", "0", "f", "n"})


def boolean_converter(spec: FieldSpec) -> Converter:
    def parse(value: str) -> bool:
        v = value.strip().lower()
        if v in TRUE_WORDS:
            return True
        if v in FALSE_WORDS:
            return False
        raise FieldError(f"{value!r} is not a boolean (use true/false, yes/no, 1/0, t/f, y/n)")

    return parse


BOOLEAN = FieldTypeSpec(
    name="boolean",
    label="Boolean",
    converter=boolean_converter,
    choice_fits=lambda choice: isinstance(choice, bool),
    sql_type="boolean",
    sqlite_type="INTEGER",  # SQLite has no boolean: 0 and 1
    openapi={"type": "boolean"},
    openapi_filter={"type": "boolean"},
    operators=("eq",),
    filter_kind="boolean",
    arrow_type=("bool_",),
    infer_rank=0,
    infer_noun="booleans",
    good_key=False,
)
