"""The field-type registry: every type a schema field may have, declared once.

``FIELD_TYPES`` maps a type's name to its ``FieldTypeSpec``, in the order
the schema documentation and ``FieldType`` list them. Code that does
something per type asks ``field_type(name)`` for it; a new type is one
module here plus its tests (docs/development.md, "Adding a field type").
"""

from __future__ import annotations

from .base import Converter, ConverterFactory, FieldError, FieldTypeSpec
from .boolean import BOOLEAN
from .date import DATE
from .datetime import DATETIME
from .decimal import DECIMAL
from .email import EMAIL
from .float import FLOAT
from .integer import INTEGER
from .string import STRING
from .url import URL

FIELD_TYPES: dict[str, FieldTypeSpec] = {
    t.name: t for t in (STRING, INTEGER, DECIMAL, FLOAT, BOOLEAN, DATE, DATETIME, EMAIL, URL)
}


def field_type(name: str) -> FieldTypeSpec:
    """The registered type called ``name`` (``KeyError`` for a name schema checking would have refused)."""
    return FIELD_TYPES[name]


__all__ = ["FIELD_TYPES", "Converter", "ConverterFactory", "FieldError", "FieldTypeSpec", "field_type"]
