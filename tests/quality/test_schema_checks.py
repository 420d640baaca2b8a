"""The schema file's ``checks`` block: accepted forms, kept with the schema, and clear errors for bad ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from ingestion.schema import CheckSpec, checks_of_definition, schema_parse
from ingestion.services.datasets import dataset_apply

from .conftest import ORDERS_SCHEMA


def parse(checks: Any) -> tuple[CheckSpec, ...]:
    data = json.loads(json.dumps(ORDERS_SCHEMA))
    data["checks"] = checks
    return schema_parse(data).checks


def problems(checks: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse(checks)
    return caught.value.messages


def test_every_kind_is_accepted_and_round_trips() -> None:
    checks = [
        {"kind": "row_count", "at_least": 10, "at_most": 10000, "severity": "error"},
        {"kind": "null_share", "field": "price", "at_most": 0.05},
        {"kind": "distinct_share", "field": "id", "at_least": 0.99, "severity": "error"},
        {"kind": "min", "field": "price", "at_least": 0},
        {"kind": "max", "field": "day", "at_most": "2030-01-01"},
        {"kind": "mean", "field": "ratio", "at_least": 0.2, "at_most": 0.8},
        {"kind": "freshness", "hours": 26},
    ]
    parsed = parse(checks)
    assert [c.kind for c in parsed] == [c["kind"] for c in checks]
    assert parsed[1] == CheckSpec(kind="null_share", severity="warn", field="price", at_most=0.05)
    data = json.loads(json.dumps(ORDERS_SCHEMA))
    data["checks"] = checks
    definition = schema_parse(data).to_dict()
    assert checks_of_definition(definition) == parsed
    assert schema_parse(definition).to_dict() == definition


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ({"kind": "row_count"}, "checks: must be a list of checks"),
        (["row_count"], "checks[0]: must be an object with a 'kind'"),
        ([{"kind": "rows"}], "checks[0]: unknown check kind 'rows' (expected one of row_count, null_share"),
        ([{"kind": "null_share", "field": "nope", "at_most": 0.1}], "checks[0] (null_share): unknown field 'nope'"),
        ([{"kind": "null_share", "at_most": 0.1}], "checks[0] (null_share): 'field' must name a field"),
        (
            [{"kind": "null_share", "field": "price", "at_most": 1.5}],
            "'at_most' is a share: it must be between 0 and 1",
        ),
        ([{"kind": "row_count", "at_least": 10, "at_most": 5}], "bad range: 'at_least' (10) is above 'at_most' (5)"),
        ([{"kind": "row_count"}], "checks[0] (row_count): needs a range: 'at_least', 'at_most' or both"),
        ([{"kind": "row_count", "at_least": "ten"}], "'at_least' must be a number, got 'ten'"),
        ([{"kind": "row_count", "at_least": 1.5}], "must be a whole number of rows"),
        ([{"kind": "mean", "field": "category", "at_least": 1}], "applies to numbers, dates and date-times"),
        ([{"kind": "min", "field": "day", "at_least": 5}], "must be an ISO date text for the date field 'day'"),
        ([{"kind": "row_count", "at_least": 1, "severity": "fatal"}], "'severity' must be 'warn' or 'error'"),
        ([{"kind": "row_count", "at_least": 1, "field": "id"}], "unknown key 'field' (a row_count check takes"),
        ([{"kind": "freshness", "hours": 0}], "'hours' must be a number of hours above 0"),
        ([{"kind": "freshness", "hours": 24, "severity": "error"}], "freshness is about the loads before this run"),
        ([{"kind": "null_share", "field": "price", "at_most": 0.1, "max": 3}], "unknown key 'max'"),
    ],
)
def test_bad_checks_are_refused_with_a_clear_message(checks: Any, message: str) -> None:
    found = problems(checks)
    assert any(message in m for m in found), found


def test_changing_only_checks_keeps_the_schema_version(db: None) -> None:
    data = json.loads(json.dumps(ORDERS_SCHEMA))
    first = dataset_apply(spec=schema_parse(data))
    data["checks"] = [{"kind": "row_count", "at_least": 1}]
    second = dataset_apply(spec=schema_parse(data))
    assert not second.new_version and second.schema.pk == first.schema.pk
    second.schema.refresh_from_db()
    assert checks_of_definition(second.schema.definition) == (CheckSpec(kind="row_count", at_least=1),)
