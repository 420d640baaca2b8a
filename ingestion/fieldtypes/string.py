"""``string``: any text, kept exactly as written (the default type)."""

from __future__ import annotations

from .base import TEXT_OPERATORS, FieldTypeSpec

STRING = FieldTypeSpec(
    name="string",
    label="String",
    # Text needs no parsing: compile_field skips the converter of a verbatim type.
    converter=lambda spec: str,
    verbatim=True,
    is_text=True,
    sql_type="text",
    sqlite_type="TEXT",
    openapi={"type": "string"},
    openapi_filter={"type": "string"},
    operators=TEXT_OPERATORS,
    filter_kind="text",
)
