"""The schema file: parsing, normalising, checksums and every error message."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from ingestion.schema import FieldSpec, SchemaSpec, schema_loads, schema_parse
from tests.conftest import SALES_SCHEMA

EXAMPLE: dict[str, Any] = SALES_SCHEMA  # the schema file from the issue, shared by the suite


def example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def with_field(**field: Any) -> dict[str, Any]:
    """A minimal valid schema (key field ``id``) plus one extra field."""
    return {
        "slug": "things",
        "key": ["id"],
        "fields": [{"name": "id", "required": True}, field],
    }


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ValidationError) as excinfo:
        schema_parse(data)
    return excinfo.value.messages


def field_named(spec: SchemaSpec, name: str) -> FieldSpec:
    return next(f for f in spec.fields if f.name == name)


# --- the example schema ------------------------------------------------------


def test_the_example_schema_parses_into_a_spec() -> None:
    spec = schema_parse(example())

    assert spec.slug == "sales"
    assert spec.name == "Sales events"
    assert spec.description == ""
    assert spec.key == ("id",)
    assert spec.delimiter == ","
    assert spec.reject_threshold is None
    assert [f.name for f in spec.fields] == [
        "id",
        "timestamp",
        "category",
        "value",
        "quantity",
        "email",
        "country",
        "description",
        "is_active",
    ]
    assert [f.type for f in spec.fields] == [
        "string",
        "datetime",
        "string",
        "decimal",
        "integer",
        "email",
        "string",
        "string",
        "boolean",
    ]
    assert [f.required for f in spec.fields] == [True, True, True, False, True, True, True, False, True]


def test_the_example_schema_splits_constraints_and_type_options() -> None:
    spec = schema_parse(example())

    assert field_named(spec, "id").constraints == {"max_length": 64}
    assert field_named(spec, "id").transforms == ("strip",)
    assert field_named(spec, "timestamp").options == {"default_timezone": "UTC"}
    assert field_named(spec, "timestamp").constraints == {}
    assert field_named(spec, "category").constraints == {"choices": ["books", "toys"]}
    assert field_named(spec, "category").transforms == ("strip", "lower")
    assert field_named(spec, "value").options == {"thousands_separator": ","}
    assert field_named(spec, "value").constraints == {"min": 0}
    assert field_named(spec, "country").constraints == {"pattern": "^[A-Z]{2}$"}


def test_a_field_is_found_under_its_source_then_its_aliases() -> None:
    spec = schema_parse(with_field(name="email", source="customer_email", aliases=["mail", "e_mail"]))
    email = field_named(spec, "email")

    assert email.headers == ("customer_email", "mail", "e_mail")
    assert field_named(spec, "id").headers == ("id",)


def test_a_field_without_a_type_is_a_string() -> None:
    spec = schema_parse(with_field(name="note"))

    assert field_named(spec, "note").type == "string"


def test_a_single_key_name_is_accepted_as_a_string() -> None:
    data = example()
    data["key"] = "id"

    assert schema_parse(data).key == ("id",)


def test_the_name_defaults_to_the_slug() -> None:
    data = example()
    del data["name"]

    assert schema_parse(data).name == "sales"


def test_schema_loads_parses_json_text_and_bytes() -> None:
    text = json.dumps(EXAMPLE)

    assert schema_loads(text) == schema_parse(example())
    assert schema_loads(text.encode()) == schema_parse(example())


def test_a_composite_key_and_reject_threshold_are_kept() -> None:
    data = example()
    data["key"] = ["id", "timestamp"]
    data["reject_threshold"] = 0
    data["description"] = "Point of sale events"

    spec = schema_parse(data)

    assert spec.key == ("id", "timestamp")
    assert spec.reject_threshold == 0.0
    assert isinstance(spec.reject_threshold, float)
    assert spec.description == "Point of sale events"


def test_reject_threshold_bounds_are_inclusive() -> None:
    for threshold in (0, 0.5, 1, 1.0):
        data = example()
        data["reject_threshold"] = threshold
        assert schema_parse(data).reject_threshold == float(threshold)


def test_an_empty_delimiter_means_detect_it() -> None:
    data = example()
    data["delimiter"] = ""

    assert schema_parse(data).delimiter == ""
    assert "delimiter" not in schema_parse(data).to_dict()


def test_unique_false_is_dropped_and_unique_true_is_kept() -> None:
    spec = schema_parse(
        {
            "slug": "things",
            "key": ["id"],
            "fields": [
                {"name": "id", "required": True, "unique": False},
                {"name": "code", "unique": True},
            ],
        }
    )

    assert field_named(spec, "id").constraints == {}
    assert field_named(spec, "code").constraints == {"unique": True}


# --- normalisation --------------------------------------------------------


def test_to_dict_then_parse_gives_an_equal_spec() -> None:
    spec = schema_parse(example())

    again = schema_parse(json.loads(json.dumps(spec.to_dict())))

    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_round_trip_keeps_every_kind_of_field_setting() -> None:
    data = {
        "slug": "everything",
        "name": "Everything",
        "description": "All settings at once",
        "key": ["code", "day"],
        "delimiter": ";",
        "reject_threshold": 0.25,
        "fields": [
            {
                "name": "code",
                "type": "string",
                "required": True,
                "source": "Code",
                "aliases": ["CODE", "product_code"],
                "transforms": ["strip", "collapse_whitespace", "upper"],
                "null_values": ["N/A", "-"],
                "min_length": 2,
                "max_length": 10,
                "pattern": "[A-Z ]+",
                "choices": ["AB", "CD EF"],
                "unique": True,
                "description": "Product code",
            },
            {"name": "day", "type": "date", "required": True, "formats": ["%d/%m/%Y"], "min": "2020-01-01"},
            {"name": "amount", "type": "decimal", "thousands_separator": ".", "decimal_separator": ",", "max": 1e6},
            {"name": "ratio", "type": "float", "min": -1.5, "max": 1.5},
            {"name": "seen", "type": "datetime", "default_timezone": "Europe/Paris", "formats": ["%d/%m/%Y %H:%M"]},
            {"name": "site", "type": "url"},
        ],
    }
    spec = schema_parse(data)

    again = schema_parse(json.loads(json.dumps(spec.to_dict())))

    assert again == spec
    assert again.to_dict() == spec.to_dict()
    assert spec.reject_threshold == 0.25
    assert field_named(spec, "code").null_values == ("N/A", "-")
    assert field_named(spec, "code").aliases == ("CODE", "product_code")
    assert field_named(spec, "day").options == {"formats": ["%d/%m/%Y"]}
    assert field_named(spec, "amount").options == {"thousands_separator": ".", "decimal_separator": ","}


def test_to_dict_leaves_out_defaults() -> None:
    spec = schema_parse(with_field(name="note", type="string", required=False, transforms=[], aliases=[]))

    assert field_named(spec, "note").to_dict() == {"name": "note", "type": "string"}
    assert spec.to_dict() == {
        "slug": "things",
        "name": "things",
        "key": ["id"],
        "fields": [{"name": "id", "type": "string", "required": True}, {"name": "note", "type": "string"}],
    }


def test_to_dict_writes_a_missing_type_out_as_string() -> None:
    spec = schema_parse(with_field(name="note"))

    assert spec.to_dict()["fields"][1] == {"name": "note", "type": "string"}


# --- fields checksum --------------------------------------------------------


def test_fields_checksum_is_a_stable_sha256() -> None:
    first = schema_parse(example()).fields_checksum()

    assert first == schema_parse(example()).fields_checksum()
    assert first == schema_loads(json.dumps(EXAMPLE)).fields_checksum()
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_fields_checksum_ignores_key_order_within_a_field() -> None:
    data = example()
    data["fields"][0] = dict(reversed(list(data["fields"][0].items())))

    assert schema_parse(data).fields_checksum() == schema_parse(example()).fields_checksum()


def test_fields_checksum_ignores_the_dataset_name_and_description() -> None:
    data = example()
    data["name"] = "Renamed"
    data["description"] = "Now with a description"

    assert schema_parse(data).fields_checksum() == schema_parse(example()).fields_checksum()


def test_fields_checksum_ignores_delimiter_threshold_and_slug() -> None:
    data = example()
    data["delimiter"] = ";"
    data["reject_threshold"] = 0.5
    data["slug"] = "sales-2"

    assert schema_parse(data).fields_checksum() == schema_parse(example()).fields_checksum()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["fields"][3].update(min=1), id="constraint"),
        pytest.param(lambda d: d["fields"][7].update(required=True), id="required"),
        pytest.param(lambda d: d["fields"][4].update(type="float"), id="type"),
        pytest.param(lambda d: d["fields"][5].update(source="mail"), id="source"),
        pytest.param(lambda d: d["fields"][0].update(transforms=["strip", "upper"]), id="transforms"),
        pytest.param(lambda d: d["fields"].append({"name": "extra"}), id="added field"),
        pytest.param(lambda d: d["fields"].pop(), id="removed field"),
        pytest.param(lambda d: d["fields"].insert(0, d["fields"].pop()), id="field order"),
        pytest.param(lambda d: d.update(key=["id", "timestamp"]), id="key"),
    ],
)
def test_fields_checksum_changes_when_the_fields_or_key_change(change: Any) -> None:
    data = example()
    change(data)

    assert schema_parse(data).fields_checksum() != schema_parse(example()).fields_checksum()


# --- errors: fields ----------------------------------------------------------


def test_it_rejects_an_unknown_type_naming_the_field() -> None:
    messages = errors_of(with_field(name="price", type="money"))

    assert len(messages) == 1
    assert messages[0].startswith("field 'price': unknown type 'money' (expected one of string, integer")
    assert "url" in messages[0]


def test_it_rejects_a_misspelt_key_naming_the_field_and_the_key() -> None:
    messages = errors_of(with_field(name="price", type="decimal", requird=True))

    assert messages == ["field 'price': unknown key 'requird' for a decimal field"]


def test_it_rejects_an_option_of_another_type() -> None:
    messages = errors_of(with_field(name="note", type="string", thousands_separator=","))

    assert messages == ["field 'note': unknown key 'thousands_separator' for a string field"]


def test_it_rejects_default_timezone_on_a_date_field() -> None:
    messages = errors_of(with_field(name="day", type="date", default_timezone="UTC"))

    assert messages == ["field 'day': unknown key 'default_timezone' for a date field"]


def test_it_rejects_an_unknown_transform() -> None:
    messages = errors_of(with_field(name="code", transforms=["strip", "trim"]))

    assert messages == [
        "field 'code': unknown transform 'trim' (expected one of strip, lower, upper, title, collapse_whitespace)"
    ]


def test_it_rejects_transforms_that_are_not_a_list_of_strings() -> None:
    assert errors_of(with_field(name="code", transforms="strip")) == [
        "field 'code' transforms: must be a list of strings"
    ]
    assert errors_of(with_field(name="code", transforms=["strip", 1])) == [
        "field 'code' transforms: must be a list of strings"
    ]


def test_it_rejects_aliases_and_null_values_that_are_not_lists_of_strings() -> None:
    assert errors_of(with_field(name="code", aliases="c")) == ["field 'code' aliases: must be a list of strings"]
    assert errors_of(with_field(name="code", null_values=[None])) == [
        "field 'code' null_values: must be a list of strings"
    ]


def test_it_rejects_a_bad_pattern_regex() -> None:
    messages = errors_of(with_field(name="code", pattern="[A-Z"))

    assert len(messages) == 1
    assert messages[0].startswith("field 'code': 'pattern' is not a valid regular expression: ")
    assert "unterminated character set" in messages[0]


def test_it_rejects_a_pattern_that_is_not_a_string() -> None:
    messages = errors_of(with_field(name="code", pattern=5))

    assert len(messages) == 1
    assert messages == ["field 'code': 'pattern' must be a string"]


@pytest.mark.parametrize("key", ["min", "max"])
def test_it_rejects_min_and_max_on_a_string_field(key: str) -> None:
    messages = errors_of(with_field(name="code", **{key: 3}))

    assert messages == [f"field 'code': '{key}' applies to numbers, dates and datetimes; use min_length/max_length"]


@pytest.mark.parametrize("type_", ["boolean", "email", "url"])
def test_it_rejects_min_on_other_unordered_types(type_: str) -> None:
    messages = errors_of(with_field(name="thing", type=type_, min=1))

    assert messages == ["field 'thing': 'min' applies to numbers, dates and datetimes; use min_length/max_length"]


@pytest.mark.parametrize("type_", ["integer", "decimal", "float"])
@pytest.mark.parametrize("bound", ["0", True, None, [1]])
def test_it_rejects_a_non_numeric_bound_on_a_number_field(type_: str, bound: Any) -> None:
    messages = errors_of(with_field(name="amount", type=type_, max=bound))

    assert messages == ["field 'amount': 'max' must be a number"]


@pytest.mark.parametrize("type_", ["date", "datetime"])
def test_it_rejects_a_non_string_bound_on_a_date_field(type_: str) -> None:
    messages = errors_of(with_field(name="when", type=type_, min=20240101))

    assert messages == [f"field 'when': 'min' must be an ISO 8601 {type_} string"]


@pytest.mark.parametrize("value", ["10", 1.5, -1, True, None])
@pytest.mark.parametrize("key", ["min_length", "max_length"])
def test_it_rejects_a_length_that_is_not_a_non_negative_integer(key: str, value: Any) -> None:
    messages = errors_of(with_field(name="code", **{key: value}))

    assert messages == [f"field 'code': '{key}' must be a non-negative integer"]


def test_a_zero_length_limit_is_allowed() -> None:
    spec = schema_parse(with_field(name="code", min_length=0, max_length=0))

    assert field_named(spec, "code").constraints == {"min_length": 0, "max_length": 0}


@pytest.mark.parametrize("choices", ["books", [], {"a": 1}, None])
def test_it_rejects_choices_that_are_not_a_non_empty_list(choices: Any) -> None:
    messages = errors_of(with_field(name="category", choices=choices))

    assert messages == ["field 'category': 'choices' must be a non-empty list"]


def test_it_rejects_unique_that_is_not_a_boolean() -> None:
    assert errors_of(with_field(name="code", unique="yes")) == ["field 'code': 'unique' must be true or false"]


def test_it_rejects_required_that_is_not_a_boolean() -> None:
    assert errors_of(with_field(name="code", required="yes")) == ["field 'code': 'required' must be true or false"]


def test_it_rejects_a_source_that_is_not_a_string() -> None:
    assert errors_of(with_field(name="code", source=["c"])) == [
        "field 'code': 'source' must be a string of at most 200 characters"
    ]


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "", "/etc/passwd", "../UTC"])
def test_it_rejects_an_unknown_default_timezone(timezone: str) -> None:
    messages = errors_of(with_field(name="seen", type="datetime", default_timezone=timezone))

    assert messages == [f"field 'seen': unknown time zone {timezone!r}"]


def test_it_rejects_a_timezone_region_that_is_not_a_zone() -> None:
    messages = errors_of(with_field(name="seen", type="datetime", default_timezone="Europe"))

    assert messages == ["field 'seen': unknown time zone 'Europe'"]


@pytest.mark.parametrize("separator", ["", ",,", 1, None])
@pytest.mark.parametrize("key", ["thousands_separator", "decimal_separator"])
def test_it_rejects_a_separator_that_is_not_one_character(key: str, separator: Any) -> None:
    messages = errors_of(with_field(name="amount", type="decimal", **{key: separator}))

    assert messages == [f"field 'amount': '{key}' must be a single character"]


def test_it_rejects_formats_that_are_not_a_list_of_strings() -> None:
    messages = errors_of(with_field(name="day", type="date", formats="%d/%m/%Y"))

    assert messages == ["field 'day' formats: must be a list of strings"]


@pytest.mark.parametrize("name", ["", "1st", "first-name", "first name", "x" * 64, None, 5])
def test_it_rejects_a_bad_field_name(name: Any) -> None:
    messages = errors_of(with_field(name=name))

    assert messages == ["fields[1]: 'name' must be a letter or underscore followed by letters, digits or underscores"]


def test_a_63_character_field_name_is_allowed() -> None:
    spec = schema_parse(with_field(name="a_" + "b" * 61))

    assert field_named(spec, "a_" + "b" * 61).type == "string"


def test_it_rejects_a_field_that_is_not_an_object() -> None:
    data = with_field(name="x")
    data["fields"][1] = "x"

    assert errors_of(data) == ["fields[1]: must be an object"]


# --- errors: the dataset -----------------------------------------------------


def test_it_rejects_duplicate_field_names() -> None:
    data = example()
    data["fields"].append({"name": "quantity", "type": "integer"})

    assert errors_of(data) == ["schema: field 'quantity' is defined more than once"]


def test_it_rejects_a_key_naming_an_unknown_field() -> None:
    data = example()
    data["key"] = ["id", "order_id"]

    assert errors_of(data) == ["schema: key field 'order_id' is not defined in 'fields'"]


def test_it_rejects_a_key_field_that_is_not_required() -> None:
    data = example()
    data["key"] = ["value"]

    assert errors_of(data) == ["schema: key field 'value' must be required"]


@pytest.mark.parametrize("key", [[], None, 5, ["id", 5]])
def test_it_rejects_a_key_naming_no_field(key: Any) -> None:
    data = example()
    data["key"] = key

    assert errors_of(data) == ["schema: 'key' must name at least one field"]


def test_it_rejects_two_fields_reading_the_same_source() -> None:
    data = example()
    data["fields"].append({"name": "contact", "source": "customer_email"})

    assert errors_of(data) == ["schema: header 'customer_email' maps to both 'email' and 'contact'"]


def test_it_rejects_an_alias_equal_to_another_fields_name() -> None:
    data = example()
    data["fields"][5]["aliases"] = ["description"]

    assert errors_of(data) == ["schema: header 'description' maps to both 'email' and 'description'"]


def test_it_rejects_a_source_equal_to_another_fields_name() -> None:
    data = example()
    data["fields"][8]["source"] = "country"

    assert errors_of(data) == ["schema: header 'country' maps to both 'country' and 'is_active'"]


def test_a_field_may_list_its_own_name_as_an_alias() -> None:
    spec = schema_parse(with_field(name="email", source="customer_email", aliases=["email"]))

    assert field_named(spec, "email").headers == ("customer_email", "email")


def test_it_rejects_headers_that_differ_only_in_case() -> None:
    data = with_field(name="email")
    data["fields"].append({"name": "contact", "source": "Email"})

    messages = errors_of(data)

    assert len(messages) == 1
    assert "'email'" in messages[0]
    assert "'contact'" in messages[0]


@pytest.mark.parametrize("slug", ["Sales", "sales events", "sales!", "", "x" * 65, None, 5, "café"])
def test_it_rejects_a_bad_slug(slug: Any) -> None:
    data = example()
    data["slug"] = slug

    assert errors_of(data) == ["schema: 'slug' must be lowercase letters, digits, hyphens or underscores (max 64)"]


@pytest.mark.parametrize("slug", ["sales", "sales-2024", "sales_eu", "x" * 64])
def test_it_accepts_a_good_slug(slug: str) -> None:
    data = example()
    data["slug"] = slug

    assert schema_parse(data).slug == slug


@pytest.mark.parametrize("delimiter", ['"', "\n", "\r", ";;", 9, None])
def test_it_rejects_a_bad_delimiter(delimiter: Any) -> None:
    data = example()
    data["delimiter"] = delimiter

    assert errors_of(data) == ["schema: 'delimiter' must be one character other than a quote or newline"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_it_accepts_a_single_character_delimiter(delimiter: str) -> None:
    data = example()
    data["delimiter"] = delimiter

    assert schema_parse(data).delimiter == delimiter


@pytest.mark.parametrize("threshold", [-0.01, 1.01, 2, "0.5", True])
def test_it_rejects_a_reject_threshold_out_of_range(threshold: Any) -> None:
    data = example()
    data["reject_threshold"] = threshold

    assert errors_of(data) == ["schema: 'reject_threshold' must be a number between 0 and 1"]


def test_it_rejects_an_unknown_dataset_key() -> None:
    data = example()
    data["delimeter"] = ";"

    assert errors_of(data) == ["schema: unknown key 'delimeter'"]


def test_it_rejects_a_name_that_is_not_a_string() -> None:
    data = example()
    data["name"] = ["Sales"]

    assert errors_of(data) == ["schema: 'name' must be a string of at most 200 characters"]


@pytest.mark.parametrize("fields", [[], None, {"id": {}}, "id"])
def test_it_rejects_fields_that_are_not_a_non_empty_list(fields: Any) -> None:
    data = example()
    data["fields"] = fields

    messages = errors_of(data)

    assert messages[0] == "schema: 'fields' must be a non-empty list"
    # With no fields the key cannot name one either.
    assert messages[1:] == ["schema: key field 'id' is not defined in 'fields'"]


@pytest.mark.parametrize("data", [[], "sales", None, 1])
def test_it_rejects_a_schema_that_is_not_an_object(data: Any) -> None:
    assert errors_of(data) == ["The schema must be a JSON object."]


def test_it_rejects_a_description_that_is_not_a_string() -> None:
    data = example()
    data["description"] = 5

    assert errors_of(data) == ["schema: 'description' must be a string"]


def test_it_rejects_a_date_bound_that_is_not_an_iso_date() -> None:
    messages = errors_of(with_field(name="day", type="date", min="soon"))

    assert len(messages) == 1
    assert messages[0].startswith("field 'day': 'min'")


def test_it_rejects_choices_that_are_not_values_of_the_field_type() -> None:
    messages = errors_of(with_field(name="size", type="integer", choices=[1, "a"]))

    assert len(messages) == 1
    assert messages[0].startswith("field 'size': 'choices'")


# --- schema_loads and several errors -------------------------------------------


@pytest.mark.parametrize("text", ["", "{", "{'slug': 'x'}", '{"slug": "x",}', b"\xff\xfe{"])
def test_schema_loads_reports_invalid_json(text: str | bytes) -> None:
    with pytest.raises(ValidationError) as excinfo:
        schema_loads(text)

    assert len(excinfo.value.messages) == 1
    assert excinfo.value.messages[0].startswith("The schema file is not valid JSON: ")


def test_schema_loads_reports_schema_errors_of_valid_json() -> None:
    with pytest.raises(ValidationError) as excinfo:
        schema_loads('{"slug": "x", "key": ["id"], "fields": [{"name": "id"}]}')

    assert excinfo.value.messages == ["schema: key field 'id' must be required"]


def test_it_reports_several_errors_together() -> None:
    data = {
        "slug": "Bad Slug",
        "delimiter": ";;",
        "reject_threshold": 5,
        "colour": "red",
        "key": ["id", "missing"],
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "amount", "type": "money"},
            {"name": "code", "requird": True, "transforms": ["shout"], "min": 1},
            {"name": "code", "type": "integer"},
        ],
    }

    messages = errors_of(data)

    assert messages == [
        "schema: unknown key 'colour'",
        "schema: 'slug' must be lowercase letters, digits, hyphens or underscores (max 64)",
        "schema: 'delimiter' must be one character other than a quote or newline",
        "schema: 'reject_threshold' must be a number between 0 and 1",
        "field 'amount': unknown type 'money' (expected one of string, integer, decimal, float, boolean, date, "
        "datetime, email, url)",
        "field 'code': unknown key 'requird' for a string field",
        "field 'code': unknown transform 'shout' (expected one of strip, lower, upper, title, collapse_whitespace)",
        "field 'code': 'min' applies to numbers, dates and datetimes; use min_length/max_length",
        "schema: field 'code' is defined more than once",
        "schema: key field 'id' must be required",
        "schema: key field 'missing' is not defined in 'fields'",
    ]


def test_all_errors_of_one_field_are_reported() -> None:
    messages = errors_of(
        with_field(
            name="amount",
            type="integer",
            required="no",
            min="0",
            max_length=-1,
            pattern="(",
            thousands_separator="",
        )
    )

    assert [m.split(":")[0] for m in messages] == ["field 'amount'"] * 5
    assert "field 'amount': 'required' must be true or false" in messages
    assert "field 'amount': 'min' must be a number" in messages
    assert "field 'amount': 'max_length' must be a non-negative integer" in messages
    assert "field 'amount': 'thousands_separator' must be a single character" in messages
    assert any(m.startswith("field 'amount': 'pattern' is not a valid regular expression") for m in messages)


def test_it_rejects_names_and_headers_longer_than_the_database_allows() -> None:
    data = {
        "slug": "long",
        "name": "n" * 201,
        "key": ["id"],
        "fields": [{"name": "id", "type": "string", "required": True, "source": "s" * 201, "aliases": ["a" * 201]}],
    }
    with pytest.raises(ValidationError) as exc:
        schema_parse(data)

    assert exc.value.messages == [
        "schema: 'name' must be a string of at most 200 characters",
        "field 'id': 'source' must be a string of at most 200 characters",
        "field 'id': aliases must be at most 200 characters long",
    ]


# --- what no part of a schema file may hold (tests/ingestion/test_schema_doors.py takes these through every door)


@pytest.mark.parametrize("threshold", [float("nan"), float("inf")])
def test_it_rejects_a_reject_threshold_that_is_not_finite(threshold: float) -> None:
    data = example()
    data["reject_threshold"] = threshold

    assert errors_of(data) == ["reject_threshold: must be a finite number"]


def test_problems_with_the_content_are_reported_with_their_place_in_document_order() -> None:
    data = with_field(name="code", description="a\x00b", aliases=["ok", "\udc80"], null_values=["x" * 10_001])
    data["fields"][0]["odd key!"] = 2**64

    assert errors_of(data) == [
        "fields[0]['odd key!']: is beyond the 64-bit integer range",
        "fields[1].description: must not contain NUL characters",
        "fields[1].aliases[1]: must not contain lone surrogates (\\ud800-\\udfff), which are not text",
        "fields[1].null_values[0]: is 10001 characters long; the limit is 10000",
    ]


def test_the_limits_themselves_are_allowed() -> None:
    data = with_field(
        name="code",
        description="d" * 10_000,
        choices=[str(i) for i in range(10_000)],
        max_length=2**63 - 1,
        min_length=0,
    )
    data["fields"] += [{"name": f"f{i}"} for i in range(998)]

    spec = schema_parse(data)

    assert len(spec.fields) == 1000
    assert field_named(spec, "code").constraints["max_length"] == 2**63 - 1


def test_a_key_that_cannot_be_stored_is_reported_on_its_object() -> None:
    messages = errors_of({"slug": "x", "key": ["id"], "fields": [{"name": "id", "required": True, "a\x00": 1}]})

    assert messages == ["fields[0]: a key must not contain NUL characters"]


def test_deep_nesting_is_reported_on_the_key_that_holds_it() -> None:
    value: Any = 1
    for _ in range(30):
        value = {"x": value}

    assert errors_of(with_field(name="code", choices=[value])) == ["fields[1].choices: is nested deeper than 10 levels"]


def test_long_values_are_quoted_short_in_messages() -> None:
    messages = errors_of(with_field(name="code", type="t" * 5000))

    assert messages == [
        "field 'code': unknown type 'tttttttttttttttttttttttttttttttttttttttttttttttttttttttttt… (expected one of "
        "string, integer, decimal, float, boolean, date, datetime, email, url)"
    ]


def test_at_most_twenty_problems_are_listed() -> None:
    data = {"slug": "x", "key": ["id"], "fields": [{"name": "id", "required": True}]}
    data["fields"] += [{"name": f"f{i}", "type": "money"} for i in range(30)]

    messages = errors_of(data)

    assert len(messages) == 21
    assert messages[-1] == "… and 10 more problems"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"name": False}, "schema: 'name' must be a string of at most 200 characters"),
        ({"name": 0}, "schema: 'name' must be a string of at most 200 characters"),
        (
            {"fields": [{"name": "id", "required": True, "description": 5}]},
            "field 'id': 'description' must be a string",
        ),
    ],
)
def test_it_rejects_names_and_descriptions_that_are_not_strings(document: dict[str, Any], message: str) -> None:
    data = {"slug": "x", "key": ["id"], "fields": [{"name": "id", "required": True}], **document}

    assert errors_of(data) == [message]


def test_it_rejects_a_default_timezone_that_is_not_a_string() -> None:
    assert errors_of(with_field(name="at", type="datetime", default_timezone=0)) == [
        "field 'at': 'default_timezone' must be a string (a zone name such as 'Europe/Paris')"
    ]


def test_schema_loads_refuses_deep_nesting_and_large_files_without_reading_them() -> None:
    with pytest.raises(ValidationError) as deep:
        schema_loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValidationError) as large:
        schema_loads(b" " * (5 * 1024 * 1024 + 1))

    assert deep.value.messages == ["The schema file is nested too deeply to be a schema."]
    assert large.value.messages == ["The schema file is larger than 5242880 bytes."]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([{"name": "_key"}], "field '_key': names starting with '_' are kept for the lineage columns"),
        ([{"name": "Name", "source": "n1"}, {"name": "name", "source": "n2"}], "'Name' and 'name' differ only in case"),
    ],
)
def test_field_names_fit_the_dataset_table(fields: list[dict[str, str]], message: str) -> None:
    data = {"slug": "t", "key": ["id"], "fields": [{"name": "id", "required": True}, *fields]}

    with pytest.raises(ValidationError) as exc:
        schema_parse(data)

    assert any(message in m for m in exc.value.messages), exc.value.messages
    assert schema_parse(data, stored=True).fields  # a stored definition still reads back
