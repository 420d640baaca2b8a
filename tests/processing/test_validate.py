"""Validate & transform: field converters, header mapping and whole rows."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ingestion.schema import FieldSpec, SchemaSpec, schema_parse
from processing.pipeline.validate import (
    INT_MAX,
    INT_MIN,
    MAX_KEY_LENGTH,
    ROW_ERRORS,
    FieldError,
    HeaderError,
    RejectedValues,
    RowValidator,
    ValidRow,
    columns_map,
    compile_field,
    raw_values,
)
from tests.conftest import SALES_SCHEMA

SALES: dict[str, Any] = SALES_SCHEMA  # the schema file from the issue, shared by the suite
HEADER = ["id", "timestamp", "category", "value", "quantity", "customer_email", "country", "description", "is_active"]
ALL_TYPES = ["string", "integer", "decimal", "float", "boolean", "date", "datetime", "email", "url"]


def sales(**changes: Any) -> SchemaSpec:
    data = copy.deepcopy(SALES)
    data.update(changes)
    return schema_parse(data)


def good_values(**changes: str) -> list[str]:
    row = {
        "id": "S1",
        "timestamp": "2024-01-02T03:04:05Z",
        "category": "books",
        "value": "1,234.50",
        "quantity": "3",
        "customer_email": "u1@example.com",
        "country": "us",
        "description": "",
        "is_active": "yes",
    }
    row.update(changes)
    return [row[h] for h in HEADER]


def validator(schema: SchemaSpec | None = None, header: list[str] | None = None, max_field_size: int = 1000):
    schema = schema or sales()
    header = HEADER if header is None else header
    return RowValidator(schema, columns_map(schema, header), max_field_size)


def field(**options: Any) -> FieldSpec:
    """The spec of one field ``x`` (parsed through the real schema parser)."""
    schema = schema_parse(
        {"slug": "t", "key": ["k"], "fields": [{"name": "k", "required": True}, {"name": "x", **options}]}
    )
    return schema.fields[1]


def convert(value: str, **options: Any) -> Any:
    return compile_field(field(**options))(value)


def error_of(value: str, **options: Any) -> str:
    with pytest.raises(FieldError) as excinfo:
        convert(value, **options)
    return str(excinfo.value)


# --- strings and transforms ---------------------------------------------------


def test_a_string_is_kept_exactly_without_transforms() -> None:
    assert convert("  Hello \t World  ") == "  Hello \t World  "
    assert convert("Zoë ✓", type="string") == "Zoë ✓"


@pytest.mark.parametrize(
    ("transform", "value", "expected"),
    [
        ("strip", "  padded \t\n", "padded"),
        ("lower", "MiXeD Case", "mixed case"),
        ("upper", "MiXeD Case", "MIXED CASE"),
        ("title", "hello wORLD o'neil", "Hello World O'Neil"),
        ("collapse_whitespace", "  a \t b\n\n c  ", "a b c"),
    ],
)
def test_each_transform_rewrites_the_value(transform: str, value: str, expected: str) -> None:
    assert convert(value, transforms=[transform]) == expected


def test_transforms_run_in_the_order_given() -> None:
    assert convert("Ab", transforms=["lower", "upper"]) == "AB"
    assert convert("Ab", transforms=["upper", "lower"]) == "ab"
    assert convert("  big   deal ", transforms=["collapse_whitespace", "title"]) == "Big Deal"


def test_transforms_apply_before_parsing_other_types() -> None:
    assert convert(" Ann@Example.COM ", type="email", transforms=["strip", "lower"]) == "ann@example.com"
    assert convert(" YES ", type="boolean", transforms=["lower"]) is True


def test_it_accepts_a_string_of_exactly_the_length_limits() -> None:
    assert convert("abc", min_length=3, max_length=3) == "abc"


def test_it_rejects_a_string_shorter_than_min_length() -> None:
    assert error_of("ab", min_length=3) == "must be at least 3 characters long"


def test_it_rejects_a_string_longer_than_max_length() -> None:
    assert error_of("abcd", max_length=3) == "must be at most 3 characters long (got 4)"


def test_min_and_max_length_each_keep_their_own_limit() -> None:
    assert convert("abc", min_length=2, max_length=64) == "abc"
    assert error_of("a", min_length=2, max_length=64) == "must be at least 2 characters long"
    assert error_of("a" * 65, min_length=2, max_length=64) == "must be at most 64 characters long (got 65)"


def test_lengths_count_characters_not_bytes() -> None:
    assert convert("ééé", max_length=3) == "ééé"


def test_length_is_checked_after_transforms() -> None:
    assert convert("  abc  ", transforms=["strip"], max_length=3) == "abc"
    assert error_of("  abc  ", max_length=3) == "must be at most 3 characters long (got 7)"


def test_a_pattern_must_match_the_whole_value() -> None:
    assert convert("US", pattern="[A-Z]{2}") == "US"
    assert error_of("USA", pattern="[A-Z]{2}") == "'USA' does not match '[A-Z]{2}'"
    assert error_of("12a", pattern="[0-9]+") == "'12a' does not match '[0-9]+'"


def test_a_pattern_is_checked_after_transforms() -> None:
    assert convert(" us ", transforms=["strip", "upper"], pattern="^[A-Z]{2}$") == "US"
    assert error_of("u", transforms=["upper"], pattern="^[A-Z]{2}$") == "'U' does not match '^[A-Z]{2}$'"


def test_choices_are_checked_after_transforms() -> None:
    options = {"transforms": ["strip", "lower"], "choices": ["books", "toys"]}

    assert convert("  Books ", **options) == "books"
    assert convert("TOYS", **options) == "toys"
    assert error_of(" Games ", **options) == "'games' is not one of books, toys"


def test_string_choices_are_case_sensitive_without_transforms() -> None:
    assert error_of("Books", choices=["books", "toys"]) == "'Books' is not one of books, toys"


def test_string_choices_compare_as_text() -> None:
    assert convert("1", choices=[1, 2]) == "1"
    assert error_of("01", choices=[1, 2]) == "'01' is not one of 1, 2"


# --- empty values and null_values ---------------------------------------------


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_an_empty_optional_value_is_none_for_every_type(type_: str) -> None:
    assert convert("", type=type_) is None


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_an_empty_required_value_is_reported_for_every_type(type_: str) -> None:
    assert error_of("", type=type_, required=True) == "this field is required"


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_null_values_are_none_for_every_type(type_: str) -> None:
    assert convert("N/A", type=type_, null_values=["N/A", "-"]) is None
    assert convert("-", type=type_, null_values=["N/A", "-"]) is None


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_null_values_on_a_required_field_are_reported_as_missing(type_: str) -> None:
    assert error_of("N/A", type=type_, required=True, null_values=["N/A"]) == "this field is required"


def test_null_values_match_exactly() -> None:
    assert convert("n/a", null_values=["N/A"]) == "n/a"
    assert error_of("null", type="integer", null_values=["NULL"]) == "'null' is not a whole number"


def test_a_null_value_avoids_the_parse_error_it_would_give() -> None:
    assert error_of("NULL", type="integer") == "'NULL' is not a whole number"
    assert convert("NULL", type="integer", null_values=["NULL"]) is None


def test_transforms_run_before_the_null_check() -> None:
    assert convert("   ", transforms=["strip"]) is None
    assert convert(" N/A ", transforms=["strip"], null_values=["N/A"]) is None
    assert error_of("   ", transforms=["strip"], required=True) == "this field is required"
    assert error_of(" \t ", transforms=["collapse_whitespace"], required=True) == "this field is required"


def test_whitespace_is_a_value_without_a_strip_transform() -> None:
    assert convert("   ") == "   "
    assert convert("   ", required=True) == "   "


def test_constraints_do_not_apply_to_missing_values() -> None:
    options = {"min_length": 3, "pattern": "[a-z]+", "choices": ["abc"]}

    assert convert("", **options) is None
    assert convert("", type="integer", min=5) is None


# --- integers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("-17", -17),
        ("+5", 5),
        (" 7 ", 7),
        ("\t8\n", 8),
        ("007", 7),
        ("-0", 0),
        ("12.0", 12),
        ("12.000", 12),
        ("12.", 12),
        (str(INT_MAX), 2**63 - 1),
        (str(INT_MIN), -(2**63)),
    ],
)
def test_it_accepts_whole_numbers(value: str, expected: int) -> None:
    result = convert(value, type="integer")

    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value", ["12.5", "12.01", "1,234", "1e3", "abc", "0x10", "1_000", "--5", "+ 5", ".5", "five", "1 234", "½"]
)
def test_it_rejects_values_that_are_not_whole_numbers(value: str) -> None:
    assert error_of(value, type="integer") == f"{value!r} is not a whole number"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1,234", 1234), ("1,234,567", 1234567), ("-1,234", -1234), ("+1,000", 1000), ("1,234.00", 1234), ("999", 999)],
)
def test_it_accepts_a_configured_thousands_separator(value: str, expected: int) -> None:
    assert convert(value, type="integer", thousands_separator=",") == expected


@pytest.mark.parametrize("value", ["1,23,4", "1234,567", ",123", "1,2345", "1,234,", "12,34"])
def test_it_rejects_misplaced_thousands_separators(value: str) -> None:
    assert error_of(value, type="integer", thousands_separator=",") == f"misplaced thousands separator ',' in {value!r}"


def test_it_names_the_trimmed_value_in_a_misplaced_separator_message() -> None:
    assert error_of(" 1,23 ", type="integer", thousands_separator=",") == "misplaced thousands separator ',' in '1,23'"


def test_a_dot_thousands_separator_is_not_a_decimal_point() -> None:
    assert convert("1.234.567", type="integer", thousands_separator=".") == 1234567
    assert error_of("12.0", type="integer", thousands_separator=".") == "misplaced thousands separator '.' in '12.0'"


def test_a_space_thousands_separator_is_accepted() -> None:
    assert convert("1 234 567", type="integer", thousands_separator=" ") == 1234567
    assert convert("1\u00a0234", type="integer", thousands_separator="\u00a0") == 1234


def test_a_whole_number_with_a_fraction_part_under_a_separator_is_rejected() -> None:
    assert error_of("1,234.5", type="integer", thousands_separator=",") == "'1,234.5' is not a whole number"


@pytest.mark.parametrize("value", [str(INT_MAX + 1), str(INT_MIN - 1), "99999999999999999999", "-1" + "0" * 30])
def test_it_rejects_integers_outside_int64(value: str) -> None:
    assert error_of(value, type="integer") == f"{value!r} is out of range for a 64-bit integer"


def test_it_rejects_an_integer_with_thousands_of_digits_as_out_of_range() -> None:
    value = "1" * 5000

    assert error_of(value, type="integer") == f"{value!r} is out of range for a 64-bit integer"


def test_integer_bounds_are_inclusive() -> None:
    assert convert("0", type="integer", min=0, max=10) == 0
    assert convert("10", type="integer", min=0, max=10) == 10
    assert error_of("-1", type="integer", min=0, max=10) == "must be at least 0"
    assert error_of("11", type="integer", min=0, max=10) == "must be at most 10"


def test_integer_choices_compare_parsed_numbers() -> None:
    assert convert("02", type="integer", choices=[1, 2, 3]) == 2
    assert convert("3.0", type="integer", choices=[1, 2, 3]) == 3
    assert error_of("4", type="integer", choices=[1, 2, 3]) == "4 is not one of 1, 2, 3"


def test_integer_length_and_pattern_see_the_parsed_number() -> None:
    assert error_of("0042", type="integer", pattern="[0-9]{4}") == "42 does not match '[0-9]{4}'"
    assert error_of("12345", type="integer", max_length=4) == "must be at most 4 characters long (got 5)"


# --- decimals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234.50", "1234.50"),
        ("0.10", "0.10"),
        ("-3", "-3"),
        ("+2.5", "2.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("007.10", "7.10"),
        (" 1.5 ", "1.5"),
        ("-0.00", "-0.00"),
        ("0.000001", "0.000001"),
    ],
)
def test_it_accepts_decimals_keeping_their_scale(value: str, expected: str) -> None:
    assert convert(value, type="decimal") == expected


@pytest.mark.parametrize("value", ["1e3", "1E-2", "NaN", "Infinity", "inf", "1.2.3", "abc", "1,5", "0x1A", "1_0"])
def test_it_rejects_values_that_are_not_plain_decimals(value: str) -> None:
    assert error_of(value, type="decimal") == f"{value!r} is not a decimal number"


def test_a_decimal_thousands_separator_is_removed() -> None:
    assert convert("1,234.50", type="decimal", thousands_separator=",") == "1234.50"
    assert convert("1,234,567", type="decimal", thousands_separator=",") == "1234567"
    assert (
        error_of("1,23.5", type="decimal", thousands_separator=",") == "misplaced thousands separator ',' in '1,23.5'"
    )


def test_a_decimal_comma_is_accepted() -> None:
    assert convert("1234,50", type="decimal", decimal_separator=",") == "1234.50"
    assert convert("-0,5", type="decimal", decimal_separator=",") == "-0.5"


def test_a_decimal_comma_with_dot_thousands_is_accepted() -> None:
    options = {"type": "decimal", "thousands_separator": ".", "decimal_separator": ","}

    assert convert("1.234,50", **options) == "1234.50"
    assert convert("1234,50", **options) == "1234.50"
    assert convert("1.234.567", **options) == "1234567"
    assert error_of("1.23,4", **options) == "misplaced thousands separator '.' in '1.23,4'"


def test_a_dot_is_not_a_decimal_point_when_the_separator_is_a_comma() -> None:
    message = error_of("1.500", type="decimal", decimal_separator=",")

    assert message == "'1.500' has a '.' but the decimal separator is ','"


def test_it_accepts_decimals_of_up_to_40_digits() -> None:
    forty = "1" * 40
    split = "9" * 20 + "." + "9" * 20

    assert convert(forty, type="decimal") == forty
    assert convert(split, type="decimal") == split
    assert convert("-" + forty, type="decimal") == "-" + forty


@pytest.mark.parametrize("value", ["1" * 41, "1" * 21 + "." + "1" * 20, "0." + "0" * 40])
def test_it_rejects_decimals_of_more_than_40_digits(value: str) -> None:
    assert error_of(value, type="decimal") == f"{value!r} has more than 40 digits"


def test_decimal_bounds_compare_numerically() -> None:
    options = {"type": "decimal", "min": 0, "max": 99.99}

    assert convert("0.00", **options) == "0.00"
    assert convert("99.990", **options) == "99.990"
    assert convert("5", **options) == "5"
    assert error_of("-0.01", **options) == "must be at least 0"
    assert error_of("100", **options) == "must be at most 99.99"
    assert error_of("99.991", **options) == "must be at most 99.99"


def test_a_fractional_decimal_bound_is_exact() -> None:
    assert convert("0.1", type="decimal", min=0.1) == "0.1"
    assert error_of("0.0999999999", type="decimal", min=0.1) == "must be at least 0.1"


def test_decimal_choices_compare_numerically() -> None:
    assert convert("1.50", type="decimal", choices=["1.5", "2.5"]) == "1.50"


# --- floats -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.5", 1.5),
        ("-2", -2.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("-1.5e+2", -150.0),
        (".5", 0.5),
        ("5.", 5.0),
        (" 2.5 ", 2.5),
        ("1e-400", 0.0),
    ],
)
def test_it_accepts_floats_with_and_without_exponents(value: str, expected: float) -> None:
    result = convert(value, type="float")

    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "nan", "NaN", "1.2.3", "e5", "1e", "abc", "0x1p3"])
def test_it_rejects_floats_that_are_not_finite_numbers(value: str) -> None:
    assert error_of(value, type="float") == f"{value!r} is not a number"


@pytest.mark.parametrize("value", ["1e999", "-1e309", "9" * 400])
def test_it_rejects_floats_that_overflow(value: str) -> None:
    assert error_of(value, type="float") == f"{value!r} is too large"


def test_float_separators_are_applied() -> None:
    assert convert("1,234.5", type="float", thousands_separator=",") == 1234.5
    assert convert("2,5", type="float", decimal_separator=",") == 2.5
    assert convert("2,5e2", type="float", decimal_separator=",") == 250.0
    assert error_of("1,23.5", type="float", thousands_separator=",") == "misplaced thousands separator ',' in '1,23.5'"


def test_float_bounds_are_inclusive() -> None:
    options = {"type": "float", "min": -1.5, "max": 1.5}

    assert convert("-1.5", **options) == -1.5
    assert convert("1.5", **options) == 1.5
    assert error_of("-1.51", **options) == "must be at least -1.5"
    assert error_of("2e0", **options) == "must be at most 1.5"


# --- booleans -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["true", "TRUE", "True", "tRuE", "yes", "YES", "Yes", "1", "t", "T", "y", "Y", " yes ", "\ttrue\n"]
)
def test_it_accepts_every_spelling_of_true(value: str) -> None:
    assert convert(value, type="boolean") is True


@pytest.mark.parametrize("value", ["false", "FALSE", "False", "no", "NO", "No", "0", "f", "F", "n", "N", " no "])
def test_it_accepts_every_spelling_of_false(value: str) -> None:
    assert convert(value, type="boolean") is False


@pytest.mark.parametrize("value", ["on", "off", "2", "-1", "01", "yes!", "truee", "ja", "nope", "1.0"])
def test_it_rejects_other_words_as_booleans(value: str) -> None:
    assert error_of(value, type="boolean") == f"{value!r} is not a boolean (use true/false, yes/no, 1/0, t/f, y/n)"


# --- dates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02", "2024-01-02"),
        (" 2024-02-29 ", "2024-02-29"),
        ("0001-01-01", "0001-01-01"),
        ("9999-12-31", "9999-12-31"),
        ("20240102", "2024-01-02"),
    ],
)
def test_it_accepts_iso_dates(value: str, expected: str) -> None:
    assert convert(value, type="date") == expected


@pytest.mark.parametrize(
    "value", ["2023-02-29", "2024-13-01", "2024-01-32", "02/01/2024", "2024-1-2", "2024-01-02T03:04:05", "today"]
)
def test_it_rejects_values_that_are_not_iso_dates(value: str) -> None:
    assert error_of(value, type="date") == f"{value!r} is not a date (expected YYYY-MM-DD)"


def test_it_accepts_dates_in_the_extra_formats() -> None:
    options = {"type": "date", "formats": ["%d/%m/%Y", "%b %d %Y"]}

    assert convert("02/01/2024", **options) == "2024-01-02"
    assert convert("Jan 02 2024", **options) == "2024-01-02"
    assert convert("2024-01-02", **options) == "2024-01-02"


def test_the_date_message_lists_the_extra_formats() -> None:
    options = {"type": "date", "formats": ["%d/%m/%Y", "%b %d %Y"]}

    assert error_of("2024/01/02", **options) == "'2024/01/02' is not a date (expected YYYY-MM-DD or %d/%m/%Y, %b %d %Y)"
    assert error_of("31/02/2024", **options) == "'31/02/2024' is not a date (expected YYYY-MM-DD or %d/%m/%Y, %b %d %Y)"


def test_date_bounds_are_inclusive() -> None:
    options = {"type": "date", "min": "2024-01-01", "max": "2024-12-31", "formats": ["%d/%m/%Y"]}

    assert convert("2024-01-01", **options) == "2024-01-01"
    assert convert("2024-12-31", **options) == "2024-12-31"
    assert error_of("2023-12-31", **options) == "must be at least 2024-01-01"
    assert error_of("31/12/2023", **options) == "must be at least 2024-01-01"
    assert error_of("2025-01-01", **options) == "must be at most 2024-12-31"


def test_date_choices_compare_parsed_dates() -> None:
    options = {"type": "date", "choices": ["2024-01-01", "2024-07-01"], "formats": ["%d/%m/%Y"]}

    assert convert("01/07/2024", **options) == "2024-07-01"
    assert error_of("2024-01-02", **options) == "'2024-01-02' is not one of 2024-01-01, 2024-07-01"


# --- datetimes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000000Z"),
        ("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05.000000Z"),
        ("2024-01-02T03:04:05+02:00", "2024-01-02T01:04:05.000000Z"),
        ("2024-01-02T03:04:05-05:30", "2024-01-02T08:34:05.000000Z"),
        ("2024-01-02T03:04:05+0100", "2024-01-02T02:04:05.000000Z"),
        ("2024-01-01T00:30:00+01:00", "2023-12-31T23:30:00.000000Z"),
        ("2024-01-02 03:04:05Z", "2024-01-02T03:04:05.000000Z"),
        ("2024-01-02 03:04:05+02:00", "2024-01-02T01:04:05.000000Z"),
        ("2024-01-02T03:04:05.5Z", "2024-01-02T03:04:05.500000Z"),
        ("2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05.123000Z"),
        ("2024-01-02T03:04:05.123456+01:00", "2024-01-02T02:04:05.123456Z"),
        ("2024-01-02T03:04", "2024-01-02T03:04:00.000000Z"),
        ("2024-01-02", "2024-01-02T00:00:00.000000Z"),
        (" 2024-01-02T03:04:05Z ", "2024-01-02T03:04:05.000000Z"),
    ],
)
def test_it_accepts_iso_datetimes_and_writes_them_in_utc(value: str, expected: str) -> None:
    assert convert(value, type="datetime") == expected


def test_a_naive_datetime_is_utc_by_default() -> None:
    assert convert("2024-01-02T03:04:05", type="datetime") == "2024-01-02T03:04:05.000000Z"
    assert convert("2024-01-02T03:04:05", type="datetime", default_timezone="UTC") == "2024-01-02T03:04:05.000000Z"


def test_a_naive_datetime_takes_the_default_timezone() -> None:
    paris = {"type": "datetime", "default_timezone": "Europe/Paris"}

    assert convert("2024-01-02T03:04:05", **paris) == "2024-01-02T02:04:05.000000Z"
    assert convert("2024-07-02T03:04:05", **paris) == "2024-07-02T01:04:05.000000Z"
    assert convert("2024-01-01 00:30:00", **paris) == "2023-12-31T23:30:00.000000Z"
    assert convert("2024-01-02T03:04:05", type="datetime", default_timezone="America/New_York") == (
        "2024-01-02T08:04:05.000000Z"
    )


def test_an_explicit_offset_wins_over_the_default_timezone() -> None:
    paris = {"type": "datetime", "default_timezone": "Europe/Paris"}

    assert convert("2024-01-02T03:04:05Z", **paris) == "2024-01-02T03:04:05.000000Z"
    assert convert("2024-01-02T03:04:05-01:00", **paris) == "2024-01-02T04:04:05.000000Z"


def test_it_accepts_datetimes_in_the_extra_formats() -> None:
    options = {
        "type": "datetime",
        "default_timezone": "Europe/Paris",
        "formats": ["%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M %z"],
    }

    assert convert("02/01/2024 03:04", **options) == "2024-01-02T02:04:00.000000Z"
    assert convert("02/01/2024 03:04 +0000", **options) == "2024-01-02T03:04:00.000000Z"
    assert convert("2024-01-02T03:04:05Z", **options) == "2024-01-02T03:04:05.000000Z"


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2024-01-02T25:00:00", "2024-02-30T00:00:00", "2024-01-02T03:04:05 UTC", "1704164645", "02/01/2024"],
)
def test_it_rejects_values_that_are_not_iso_datetimes(value: str) -> None:
    assert error_of(value, type="datetime") == f"{value!r} is not an ISO 8601 date-time"


def test_datetime_bounds_compare_instants() -> None:
    options = {"type": "datetime", "min": "2024-01-01T00:00:00Z", "max": "2024-12-31T23:59:59+00:00"}

    assert convert("2024-01-01T00:00:00Z", **options) == "2024-01-01T00:00:00.000000Z"
    assert convert("2024-01-01T01:30:00+01:00", **options) == "2024-01-01T00:30:00.000000Z"
    assert convert("2025-01-01T00:59:59+01:00", **options) == "2024-12-31T23:59:59.000000Z"
    assert error_of("2023-12-31T23:59:59Z", **options) == "must be at least 2024-01-01T00:00:00Z"
    assert error_of("2024-01-01T00:30:00+01:00", **options) == "must be at least 2024-01-01T00:00:00Z"
    assert error_of("2025-01-01T00:00:00.000000Z", **options) == "must be at most 2024-12-31T23:59:59+00:00"


def test_a_naive_datetime_bound_is_utc() -> None:
    options = {"type": "datetime", "min": "2024-01-01T00:00:00"}

    assert convert("2024-01-01T00:00:00Z", **options) == "2024-01-01T00:00:00.000000Z"
    assert error_of("2023-12-31T23:59:59", **options) == "must be at least 2024-01-01T00:00:00"


def test_a_naive_datetime_bound_uses_the_default_timezone() -> None:
    options = {"type": "datetime", "default_timezone": "Europe/Paris", "min": "2024-01-01T00:00:00"}

    assert convert("2024-01-01T00:30:00", **options) == "2023-12-31T23:30:00.000000Z"


@pytest.mark.parametrize("value", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_it_rejects_datetimes_that_fall_outside_the_calendar_in_utc(value: str) -> None:
    assert error_of(value, type="datetime") == f"{value!r} is out of range once converted to UTC"


# --- emails and URLs ---------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["ann@example.com", "Ann.Lee+tag@Example.co.uk", "a_b-c@sub.example.org", "ann@localhost"]
)
def test_it_accepts_email_addresses_unchanged(value: str) -> None:
    assert convert(value, type="email") == value


@pytest.mark.parametrize(
    "value",
    [
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "ann @example.com",
        " ann@example.com",
        "ann@@example.com",
        "a@b@c.d",
    ],
)
def test_it_rejects_invalid_email_addresses(value: str) -> None:
    assert error_of(value, type="email") == f"{value!r} is not a valid email address"


def test_email_constraints_apply_after_parsing() -> None:
    assert error_of("ann@example.com", type="email", max_length=10) == "must be at most 10 characters long (got 15)"
    assert error_of("ann@other.com", type="email", pattern=r".*@example\.com") == (
        "'ann@other.com' does not match '.*@example\\\\.com'"
    )


@pytest.mark.parametrize(
    "value",
    [
        "https://example.com",
        "http://example.com/path?q=1&r=2#frag",
        "https://sub.example.co.uk:8080/x",
        "http://127.0.0.1/",
        "HTTPS://EXAMPLE.COM/",
    ],
)
def test_it_accepts_http_and_https_urls_unchanged(value: str) -> None:
    assert convert(value, type="url") == value


@pytest.mark.parametrize(
    "value",
    ["ftp://example.com", "example.com", "https://", "javascript:alert(1)", "http://exa mple.com", "mailto:a@b.co"],
)
def test_it_rejects_other_urls(value: str) -> None:
    assert error_of(value, type="url") == f"{value!r} is not a valid http(s) URL"


# --- columns_map --------------------------------------------------------------


def mapping_schema() -> SchemaSpec:
    return schema_parse(
        {
            "slug": "people",
            "key": ["id"],
            "fields": [
                {"name": "id", "required": True},
                {"name": "email", "source": "customer_email", "aliases": ["mail"], "required": True},
                {"name": "note"},
                {"name": "amount", "type": "decimal", "source": "Amount (EUR)"},
            ],
        }
    )


def test_an_exact_header_maps_every_field() -> None:
    header = ["id", "customer_email", "note", "Amount (EUR)"]

    columns = columns_map(mapping_schema(), header)

    assert columns.headers == tuple(header)
    assert columns.positions == {"id": 0, "email": 1, "note": 2, "amount": 3}
    assert columns.unknown == ()
    assert columns.missing_optional == ()


def test_columns_may_come_in_any_order() -> None:
    columns = columns_map(mapping_schema(), ["note", "Amount (EUR)", "customer_email", "id"])

    assert columns.positions == {"id": 3, "email": 2, "note": 0, "amount": 1}


def test_a_field_is_found_by_its_alias() -> None:
    columns = columns_map(mapping_schema(), ["mail", "id"])

    assert columns.positions["email"] == 0
    assert columns.unknown == ()


def test_the_source_is_preferred_over_an_alias() -> None:
    columns = columns_map(mapping_schema(), ["id", "mail", "customer_email"])

    assert columns.positions["email"] == 2
    assert columns.unknown == ("mail",)


def test_the_field_name_is_not_a_header_when_a_source_is_given() -> None:
    with pytest.raises(HeaderError) as excinfo:
        columns_map(mapping_schema(), ["id", "email"])

    assert str(excinfo.value) == "missing required column 'customer_email'"


def test_headers_match_ignoring_case_and_surrounding_spaces() -> None:
    columns = columns_map(mapping_schema(), [" ID ", "Customer_Email", "NOTE\t", "amount (eur)"])

    assert columns.positions == {"id": 0, "email": 1, "note": 2, "amount": 3}
    assert columns.unknown == ()


def test_a_byte_order_mark_on_the_first_header_is_ignored() -> None:
    columns = columns_map(mapping_schema(), ["\ufeffid", "customer_email"])

    assert columns.positions["id"] == 0


def test_unknown_columns_are_listed_in_file_order() -> None:
    columns = columns_map(mapping_schema(), ["extra", "id", "customer_email", "Other Thing"])

    assert columns.unknown == ("extra", "Other Thing")
    assert columns.positions["id"] == 1


def test_blank_headers_are_neither_unknown_nor_duplicates() -> None:
    columns = columns_map(mapping_schema(), ["id", "", " ", "customer_email"])

    assert columns.unknown == ()
    assert columns.positions == {"id": 0, "email": 3, "note": None, "amount": None}


def test_missing_optional_columns_are_listed_by_header() -> None:
    columns = columns_map(mapping_schema(), ["id", "customer_email"])

    assert columns.missing_optional == ("note", "Amount (EUR)")
    assert columns.positions == {"id": 0, "email": 1, "note": None, "amount": None}


def test_a_missing_required_column_is_named() -> None:
    with pytest.raises(HeaderError) as excinfo:
        columns_map(mapping_schema(), ["customer_email", "note"])

    assert str(excinfo.value) == "missing required column 'id'"


def test_all_missing_required_columns_are_named() -> None:
    with pytest.raises(HeaderError) as excinfo:
        columns_map(mapping_schema(), ["note", "email"])

    assert str(excinfo.value) == "missing required columns 'id', 'customer_email'"


def test_an_empty_header_misses_every_required_column() -> None:
    with pytest.raises(HeaderError) as excinfo:
        columns_map(mapping_schema(), [])

    assert str(excinfo.value) == "missing required columns 'id', 'customer_email'"


def test_duplicate_headers_are_refused_naming_the_columns() -> None:
    with pytest.raises(HeaderError) as excinfo:
        columns_map(mapping_schema(), ["id", "customer_email", "id"])

    assert str(excinfo.value) == "duplicate column 'id' (columns 1 and 3)"


def test_headers_differing_only_in_case_or_spaces_are_duplicates() -> None:
    with pytest.raises(HeaderError) as excinfo:
        columns_map(mapping_schema(), ["id", "Note", "customer_email", " note "])

    assert str(excinfo.value) == "duplicate column 'note' (columns 2 and 4)"


def test_duplicate_unknown_headers_are_refused_too() -> None:
    with pytest.raises(HeaderError) as excinfo:
        columns_map(mapping_schema(), ["id", "customer_email", "x", "X"])

    assert str(excinfo.value) == "duplicate column 'X' (columns 3 and 4)"


# --- RowValidator: valid rows -------------------------------------------------


def test_a_valid_row_gives_clean_data_in_schema_order() -> None:
    row = validator().validate(7, good_values(category=" Books ", country=" us ", description="Hello"))

    assert isinstance(row, ValidRow)
    assert row.line == 7
    assert row.key == "S1"
    assert row.data == {
        "id": "S1",
        "timestamp": "2024-01-02T03:04:05.000000Z",
        "category": "books",
        "value": "1234.50",
        "quantity": 3,
        "email": "u1@example.com",
        "country": "US",
        "description": "Hello",
        "is_active": True,
    }
    assert list(row.data) == [f["name"] for f in SALES["fields"]]
    assert row.data_json == json.dumps(row.data, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(row.data_json) == row.data
    assert row.copy == ("S1\t7\tS1\t2024-01-02T03:04:05.000000Z\tbooks\t1234.50\t3\tu1@example.com\tUS\tHello\ttrue\n")
    assert row.unique_values == {}


def test_empty_optional_values_are_none_in_the_data() -> None:
    row = validator().validate(2, good_values(value="", description=""))

    assert isinstance(row, ValidRow)
    assert row.data["value"] is None
    assert row.data["description"] is None
    assert '"value":null' in row.data_json


def test_missing_optional_columns_are_none_in_the_data() -> None:
    header = [h for h in HEADER if h not in ("value", "description")]
    values = [v for h, v in zip(HEADER, good_values(), strict=True) if h in header]

    row = validator(header=header).validate(2, values)

    assert isinstance(row, ValidRow)
    assert set(row.data) == {f["name"] for f in SALES["fields"]}
    assert row.data["value"] is None
    assert row.data["description"] is None


def test_unknown_columns_are_ignored() -> None:
    row = validator(header=[*HEADER, "notes"]).validate(2, [*good_values(), "anything"])

    assert isinstance(row, ValidRow)
    assert "notes" not in row.data


def test_non_ascii_text_is_kept_in_the_json() -> None:
    row = validator().validate(2, good_values(description="Zoë — café"))

    assert isinstance(row, ValidRow)
    assert '"description":"Zoë — café"' in row.data_json


def test_equal_data_is_rendered_equally() -> None:
    v = validator()

    first = v.validate(2, good_values())
    again = v.validate(99, good_values())
    normalised = v.validate(3, good_values(category=" BOOKS ", country="Us", value="1234.50", quantity="3.0"))

    assert isinstance(first, ValidRow)
    assert isinstance(again, ValidRow)
    assert isinstance(normalised, ValidRow)
    assert again.data_json == normalised.data_json == first.data_json
    assert again.copy.split("\t", 2)[2] == normalised.copy.split("\t", 2)[2] == first.copy.split("\t", 2)[2]


def test_the_rendering_does_not_depend_on_column_order() -> None:
    header = list(reversed(HEADER))

    first = validator().validate(2, good_values())
    reordered = validator(header=header).validate(2, list(reversed(good_values())))

    assert isinstance(first, ValidRow)
    assert isinstance(reordered, ValidRow)
    assert reordered.data_json == first.data_json
    assert reordered.copy == first.copy


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": "4"},
        {"value": "1234.5"},
        {"description": "x"},
        {"is_active": "no"},
        {"timestamp": "2024-01-02T03:04:06Z"},
        {"id": "S2"},
    ],
)
def test_the_rendering_changes_when_the_data_changes(change: dict[str, str]) -> None:
    v = validator()

    first = v.validate(2, good_values())
    other = v.validate(2, good_values(**change))

    assert isinstance(first, ValidRow)
    assert isinstance(other, ValidRow)
    assert other.data_json != first.data_json
    assert other.copy != first.copy


def test_the_key_is_taken_after_transforms() -> None:
    row = validator().validate(2, good_values(id="  S1  "))

    assert isinstance(row, ValidRow)
    assert row.key == "S1"


def test_a_composite_key_is_a_json_list_of_texts() -> None:
    row = validator(sales(key=["id", "timestamp", "quantity", "is_active"])).validate(2, good_values(id="Zoë"))

    assert isinstance(row, ValidRow)
    assert row.key == '["Zoë", "2024-01-02T03:04:05.000000Z", "3", "true"]'
    assert json.loads(row.key) == ["Zoë", "2024-01-02T03:04:05.000000Z", "3", "true"]


def test_a_single_non_text_key_is_written_as_text() -> None:
    assert validator(sales(key=["quantity"])).validate(2, good_values()).key == "3"
    assert validator(sales(key=["is_active"])).validate(2, good_values(is_active="N")).key == "false"


def long_key_schema(key: list[str]) -> SchemaSpec:
    return schema_parse(
        {"slug": "long", "key": key, "fields": [{"name": "a", "required": True}, {"name": "b", "required": True}]}
    )


def test_a_key_of_512_characters_is_accepted() -> None:
    schema = long_key_schema(["a"])

    row = validator(schema, ["a", "b"]).validate(2, ["k" * MAX_KEY_LENGTH, "x"])

    assert isinstance(row, ValidRow)
    assert row.key == "k" * 512


def test_a_key_longer_than_512_characters_is_rejected() -> None:
    schema = long_key_schema(["a"])

    row = validator(schema, ["a", "b"]).validate(4, ["k" * 513, "x"])

    assert isinstance(row, RejectedValues)
    assert row.line == 4
    assert row.errors == {ROW_ERRORS: ["natural key is longer than 512 characters"]}
    assert row.raw == {"a": "k" * 513, "b": "x"}


def test_a_composite_key_is_measured_as_its_json_text() -> None:
    schema = long_key_schema(["a", "b"])

    row = validator(schema, ["a", "b"]).validate(2, ["k" * 255, "k" * 255])

    assert isinstance(row, RejectedValues)
    assert row.errors == {ROW_ERRORS: ["natural key is longer than 512 characters"]}


# --- RowValidator: rejected rows ---------------------------------------------


def test_a_short_row_is_rejected_as_ragged() -> None:
    values = good_values()[:7]

    row = validator().validate(5, values)

    assert isinstance(row, RejectedValues)
    assert row.line == 5
    assert row.errors == {ROW_ERRORS: ["expected 9 values, got 7"]}
    assert row.raw == dict(zip(HEADER[:7], values, strict=True))


def test_a_long_row_is_rejected_keeping_the_extra_values() -> None:
    row = validator().validate(5, [*good_values(), "extra", "more"])

    assert isinstance(row, RejectedValues)
    assert row.errors == {ROW_ERRORS: ["expected 9 values, got 11"]}
    assert row.raw["__extra__"] == ["extra", "more"]
    assert row.raw["id"] == "S1"


def test_a_nul_byte_is_rejected_naming_the_field() -> None:
    row = validator().validate(3, good_values(description="bad\x00text"))

    assert isinstance(row, RejectedValues)
    assert row.errors == {"description": ["contains a NUL byte"]}
    assert row.raw["description"] == "bad\u2400text"
    assert row.raw["id"] == "S1"


def test_an_undecodable_byte_is_rejected_naming_the_field() -> None:
    raw_bytes = b"caf\xe9"
    value = raw_bytes.decode("utf-8", errors="surrogateescape")
    assert value == "caf\udce9"

    row = validator().validate(3, good_values(description=value))

    assert isinstance(row, RejectedValues)
    assert row.errors == {"description": ["contains bytes that are not valid in the file's encoding"]}
    assert row.raw["description"] == "caf\\xe9"
    json.dumps(row.raw).encode()  # the raw values can be stored


def test_encoding_problems_are_reported_by_field_name_or_by_header_for_unknown_columns() -> None:
    row = validator(header=[*HEADER, "notes"]).validate(
        3, [*good_values(customer_email="u1@ex\x00ample.com", id="\udcff"), "also\x00bad"]
    )

    assert isinstance(row, RejectedValues)
    assert row.errors == {
        "id": ["contains bytes that are not valid in the file's encoding"],
        "email": ["contains a NUL byte"],
        "notes": ["contains a NUL byte"],
    }
    assert row.raw["id"] == "\\xff"
    assert row.raw["notes"] == "also\u2400bad"


def test_encoding_problems_are_reported_before_value_errors() -> None:
    row = validator().validate(3, good_values(description="\x00", quantity="lots"))

    assert isinstance(row, RejectedValues)
    assert row.errors == {"description": ["contains a NUL byte"]}


def test_a_field_at_the_size_limit_is_accepted() -> None:
    row = validator(max_field_size=50).validate(2, good_values(description="x" * 50))

    assert isinstance(row, ValidRow)
    assert row.data["description"] == "x" * 50


def test_an_oversized_field_is_rejected_and_truncated_in_raw() -> None:
    row = validator(max_field_size=300).validate(2, good_values(description="x" * 301))

    assert isinstance(row, RejectedValues)
    assert row.errors == {"description": ["value is 301 characters long, over the limit of 300"]}
    assert row.raw["description"] == "x" * 200 + "…"
    assert row.raw["id"] == "S1"


def test_every_oversized_field_is_reported() -> None:
    row = validator(max_field_size=30).validate(2, good_values(id="i" * 31, description="d" * 32))

    assert isinstance(row, RejectedValues)
    assert row.errors == {
        "id": ["value is 31 characters long, over the limit of 30"],
        "description": ["value is 32 characters long, over the limit of 30"],
    }


def test_several_failing_fields_give_one_entry_each() -> None:
    values = good_values(
        id=" ",
        timestamp="yesterday",
        category="games",
        value="-1",
        quantity="1,000",
        customer_email="nope",
        country="usa",
        is_active="maybe",
    )

    row = validator().validate(8, values)

    assert isinstance(row, RejectedValues)
    assert row.line == 8
    assert row.errors == {
        "id": ["this field is required"],
        "timestamp": ["'yesterday' is not an ISO 8601 date-time"],
        "category": ["'games' is not one of books, toys"],
        "value": ["must be at least 0"],
        "quantity": ["'1,000' is not a whole number"],
        "email": ["'nope' is not a valid email address"],
        "country": ["'USA' does not match '^[A-Z]{2}$'"],
        "is_active": ["'maybe' is not a boolean (use true/false, yes/no, 1/0, t/f, y/n)"],
    }
    assert row.raw == dict(zip(HEADER, values, strict=True))


def test_a_rejected_row_keeps_the_raw_values_by_header() -> None:
    row = validator().validate(2, good_values(quantity="-3", category=" Books "))

    assert isinstance(row, RejectedValues)
    assert row.errors == {"quantity": ["must be at least 0"]}
    assert row.raw["category"] == " Books "
    assert row.raw["quantity"] == "-3"


def test_a_missing_required_value_is_rejected() -> None:
    row = validator().validate(2, good_values(customer_email=""))

    assert isinstance(row, RejectedValues)
    assert row.errors == {"email": ["this field is required"]}


# --- raw_values ---------------------------------------------------------------


def test_raw_values_names_blank_headers_by_position() -> None:
    assert raw_values(["a", "", "c"], ["1", "2", "3"]) == {"a": "1", "column_2": "2", "c": "3"}


def test_raw_values_keeps_extra_values_and_makes_them_printable() -> None:
    assert raw_values(["a"], ["1\x00", "2", "\udc80x"]) == {"a": "1\u2400", "__extra__": ["2", "\\x80x"]}


def test_raw_values_of_a_short_row_has_only_the_values_given() -> None:
    assert raw_values(["a", "b", "c"], ["1"]) == {"a": "1"}


@pytest.mark.parametrize("type_", ["integer", "decimal", "float"])
def test_it_rejects_numbers_written_with_non_ascii_digits(type_: str) -> None:
    with pytest.raises(FieldError):
        convert("١٢", type=type_)


def test_null_values_match_the_value_as_written_even_with_transforms() -> None:
    assert convert("N/A", type="string", transforms=["lower"], null_values=["N/A"]) is None


def test_choices_are_written_as_in_the_schema_file_whatever_separators_the_files_use() -> None:
    from ingestion.schema import schema_parse
    from processing.pipeline.validate import FieldError, compile_field

    spec = schema_parse(
        {
            "slug": "t",
            "key": ["id"],
            "fields": [
                {"name": "id", "required": True},
                {"name": "rate", "type": "decimal", "decimal_separator": ",", "choices": ["1.5", 2]},
            ],
        }
    )
    convert = compile_field(spec.fields[1])

    assert convert("1,5") == "1.5" and convert("2") == "2"
    with pytest.raises(FieldError, match=r"is not one of 1\.5, 2"):
        convert("1,6")
