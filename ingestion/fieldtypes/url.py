"""``url``: an ``http``/``https`` URL, stored as written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from .base import TEXT_OPERATORS, Converter, FieldError, FieldTypeSpec

if TYPE_CHECKING:
    from ingestion.schema import FieldSpec


def url_converter(spec: FieldSpec) -> Converter:
    validator = URLValidator(schemes=["http", "https"])

    def parse(value: str) -> str:
        try:
            validator(value)
        except ValidationError:
            raise FieldError(f"{value!r} is not a valid http(s) URL") from None
        return value

    return parse


URL = FieldTypeSpec(
    name="url",
    label="Url",
    converter=url_converter,
    is_text=True,
    sql_type="text",
    sqlite_type="TEXT",
    openapi={"type": "string", "format": "uri"},
    openapi_filter={"type": "string"},  # equality compares the text as given
    operators=TEXT_OPERATORS,
    filter_kind="text",
    infer_rank=7,
    infer_noun="http(s) URLs",
)
