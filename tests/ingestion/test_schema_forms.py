"""The schema as a form (the console's field rows) and the diff between two schema versions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ingestion.fieldtypes import FIELD_TYPES
from ingestion.schema import TRANSFORMS, schema_parse
from ingestion.schema_diff import AttributeChange, schema_diff
from ingestion.schema_forms import (
    DatasetIdentityForm,
    FieldRowForm,
    FieldRowFormSet,
    field_rows_initial,
    schema_from_forms,
)
from ingestion.services.datasets import dataset_create
from tests.conftest import SALES_SCHEMA


def posted(definition: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What a browser sends for the rows of ``definition`` (with ``changes`` on top)."""
    rows = field_rows_initial(definition)
    data: dict[str, Any] = {
        "dataset-slug": definition["slug"],
        "dataset-name": definition.get("name", ""),
        "fields-TOTAL_FORMS": str(len(rows)),
        "fields-INITIAL_FORMS": str(len(rows)),
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            if value is True:
                data[f"fields-{i}-{key}"] = "on"
            elif value not in (False, None):
                data[f"fields-{i}-{key}"] = value
    data.update(changes)
    return data


def forms_for(data: dict[str, Any]) -> tuple[DatasetIdentityForm, Any]:
    return DatasetIdentityForm(data, prefix="dataset"), FieldRowFormSet(data, prefix="fields")


def test_a_schema_survives_the_form_unchanged() -> None:
    identity, rows = forms_for(posted(SALES_SCHEMA))
    spec = schema_from_forms(identity=identity, rows=rows, base=SALES_SCHEMA)
    assert spec is not None
    assert spec.fields_checksum() == schema_parse(json.loads(json.dumps(SALES_SCHEMA))).fields_checksum()
    assert spec.delimiter == ","  # dataset-level keys the form does not show are kept


def test_the_rows_offer_every_registered_type_and_transform() -> None:
    form = FieldRowForm()
    assert [value for value, _ in form.fields["type"].choices] == list(FIELD_TYPES)  # type: ignore[attr-defined]
    assert [value for value, _ in form.fields["transforms"].choices] == list(TRANSFORMS)  # type: ignore[attr-defined]


def test_a_parser_message_goes_on_the_row_it_names() -> None:
    identity, rows = forms_for(posted(SALES_SCHEMA, **{"fields-6-constraints": '{"pattern": "[A-"}'}))
    assert schema_from_forms(identity=identity, rows=rows, base=SALES_SCHEMA) is None
    assert "'pattern' is not a valid regular expression" in " ".join(rows.forms[6].non_field_errors())
    assert not any(rows.forms[i].errors for i in range(6))


def test_constraints_must_be_a_json_object_without_the_rows_own_keys() -> None:
    for text, message in [
        ("[1]", "Enter a JSON object"),
        ('{"min": }', "Not valid JSON"),
        ('{"type": "integer"}', "Set type with the row's own inputs"),
    ]:
        identity, rows = forms_for(posted(SALES_SCHEMA, **{"fields-4-constraints": text}))
        assert schema_from_forms(identity=identity, rows=rows, base=SALES_SCHEMA) is None
        assert message in " ".join(rows.forms[4].errors["constraints"])


def test_unknown_constraint_keys_are_named() -> None:
    identity, rows = forms_for(posted(SALES_SCHEMA, **{"fields-4-constraints": '{"minimum": 0}'}))
    assert schema_from_forms(identity=identity, rows=rows, base=SALES_SCHEMA) is None
    assert "unknown key 'minimum' for a integer field" in " ".join(rows.forms[4].non_field_errors())


def test_removing_every_field_or_every_key_is_refused() -> None:
    data = posted(SALES_SCHEMA, **{f"fields-{i}-DELETE": "on" for i in range(9)})
    identity, rows = forms_for(data)
    assert schema_from_forms(identity=identity, rows=rows, base=SALES_SCHEMA) is None
    assert "Keep at least one field." in rows.non_form_errors()


def test_the_diff_names_fields_added_removed_and_changed_with_old_and_new_values() -> None:
    old = json.loads(json.dumps(SALES_SCHEMA))
    new = json.loads(json.dumps(SALES_SCHEMA))
    new["fields"] = [f for f in new["fields"] if f["name"] != "description"]
    new["fields"][4]["min"] = 1  # quantity
    new["fields"][4]["type"] = "decimal"
    new["fields"].append({"name": "channel", "type": "string", "required": True})

    diff = schema_diff(old, new)

    changes = {c.name: c for c in diff.fields}
    assert set(changes) == {"quantity", "description", "channel"}
    assert changes["quantity"].change == "changed"
    assert changes["quantity"].attributes == (
        AttributeChange("type", "integer", "decimal"),
        AttributeChange("min", 0, 1),
    )
    assert changes["description"].change == "removed"
    assert changes["channel"].change == "added"
    assert AttributeChange("required", None, True) in changes["channel"].attributes
    assert diff.key is None and not changes["quantity"].moved


def test_the_diff_shows_a_new_key_and_a_field_that_changed_place() -> None:
    old = {"key": ["a"], "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "string"}]}
    new = {"key": ["b"], "fields": [{"name": "b", "type": "string"}, {"name": "a", "type": "string"}]}
    diff = schema_diff(old, new)
    assert diff.key == (("a",), ("b",))
    assert {c.name: c.moved for c in diff.fields} == {"b": (2, 1), "a": (1, 2)}
    assert schema_diff(old, old).empty


@pytest.mark.django_db
def test_a_schema_version_is_named_by_its_dataset_and_number() -> None:
    result = dataset_create(
        spec=schema_parse(
            {"slug": "web-orders", "key": ["id"], "fields": [{"name": "id", "type": "string", "required": True}]}
        )
    )

    assert str(result.schema) == "web-orders v1"
