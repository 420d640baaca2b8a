"""The schema file's reading options: ``detect_delimiter`` and ``encoding``."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from ingestion.schema import schema_parse
from tests.conftest import SALES_SCHEMA


def example(**options: Any) -> dict[str, Any]:
    return {**copy.deepcopy(SALES_SCHEMA), **options}


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ValidationError) as excinfo:
        schema_parse(data)
    return excinfo.value.messages


def test_detect_delimiter_is_off_unless_the_schema_turns_it_on() -> None:
    assert schema_parse(example()).detect_delimiter is False
    spec = schema_parse(example(detect_delimiter=True))

    assert spec.detect_delimiter is True
    assert spec.to_dict()["detect_delimiter"] is True
    assert "detect_delimiter" not in schema_parse(example(detect_delimiter=False)).to_dict()


def test_it_rejects_a_detect_delimiter_that_is_not_a_boolean() -> None:
    assert errors_of(example(detect_delimiter="yes")) == ["schema: 'detect_delimiter' must be true or false"]


def test_the_encoding_option_is_kept_under_its_canonical_name() -> None:
    spec = schema_parse(example(encoding="Shift-JIS"))

    assert spec.encoding == "shift_jis"
    assert schema_parse(spec.to_dict()) == spec
    assert "encoding" not in schema_parse(example()).to_dict()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("klingon", "schema: 'encoding': Unknown encoding 'klingon'"),
        ("rot13", "schema: 'encoding': 'rot13' is not a text encoding a CSV file can be written in"),
        ("undefined", "schema: 'encoding': 'undefined' is not a text encoding a CSV file can be written in"),
        (1252, "schema: 'encoding' must be the name of a text encoding, e.g. \"cp1251\""),
    ],
)
def test_it_rejects_an_encoding_that_cannot_read_text(value: Any, message: str) -> None:
    assert errors_of(example(encoding=value)) == [message]


def test_the_reading_options_do_not_change_the_fields_checksum() -> None:
    plain = schema_parse(example()).fields_checksum()

    assert schema_parse(example(encoding="cp1251", detect_delimiter=True)).fields_checksum() == plain
