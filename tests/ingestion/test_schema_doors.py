"""Invalid schema files, through every door: the service, ``dataset_apply``, the API and the admin import.

One table of broken files; each must be refused with one line naming the
problem and where it is, and nothing may be stored. Run on SQLite and on
PostgreSQL: NUL characters and lone surrogates are the values PostgreSQL
refuses, so they must never reach it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from ingestion.models import Dataset, DatasetGrant, DatasetRole, SchemaVersion
from ingestion.schema import MAX_SCHEMA_SIZE, schema_loads
from ingestion.services.datasets import dataset_apply
from tests.api.conftest import API, bearer, error_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def document(slug: str, *, amount: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A valid schema (key ``id``, a field ``amount``), changed by ``amount`` keys and top-level keys."""
    return {
        "slug": slug,
        "key": ["id"],
        "fields": [{"name": "id", "required": True}, {"name": "amount", "type": "integer", **(amount or {})}],
        **top,
    }


def as_json(**changes: Any) -> Callable[[str], str]:
    return lambda slug: json.dumps(document(slug, **changes))


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


@dataclass(frozen=True)
class Case:
    id: str
    text: Callable[[str], str]  # the file's text for a dataset slug
    expect: str  # in the error of every door
    api_expect: str | None = None  # when the API's JSON parser answers first (it refuses NUL, NaN, deep nesting)


CASES = [
    # NUL characters and lone surrogates: PostgreSQL stores neither.
    Case("nul_in_a_field_name", as_json(amount={"name": "am\x00ount"}), "fields[1].name: must not contain NUL", "NUL"),
    Case("nul_in_a_description", as_json(amount={"description": "a\x00b"}), "fields[1].description: must not", "NUL"),
    Case("nul_in_a_null_value", as_json(amount={"null_values": ["\x00"]}), "fields[1].null_values[0]: must not", "NUL"),
    Case("nul_in_a_key_name", as_json(amount={"x\x00": 1}), "fields[1]: a key must not contain NUL", "NUL"),
    Case("nul_in_the_dataset_name", as_json(name="a\x00"), "name: must not contain NUL characters", "NUL"),
    Case("surrogate_in_the_dataset_name", as_json(name="\ud800"), "name: must not contain lone surrogates"),
    Case(
        "surrogate_in_a_choice",
        as_json(amount={"type": "string", "choices": ["a", "\udfff"]}),
        "fields[1].choices[1]: must not contain lone surrogates",
    ),
    Case("surrogate_in_the_key", as_json(key=["\ud800"]), "key[0]: must not contain lone surrogates"),
    Case("surrogate_in_a_key_name", as_json(amount={"\ud800": 1}), "fields[1]: a key must not contain lone surrogates"),
    # Wrong JSON types, key by key.
    Case("fields_as_a_string", as_json(fields="id,amount"), "'fields' must be a non-empty list"),
    Case(
        "a_field_as_a_list",
        lambda s: json.dumps({**document(s), "fields": [{"name": "id", "required": True}, []]}),
        "fields[1]: must be an object",
    ),
    Case("key_as_a_number", as_json(key=5), "'key' must name at least one field"),
    # The API's update names the slug its own way (it cannot change), so both doors are asked for 'slug'.
    Case("slug_as_a_number", lambda s: json.dumps({**document(s), "slug": 5}), "'slug' must be lowercase", "slug"),
    Case("a_field_name_as_a_number", as_json(amount={"name": 5}), "fields[1]: 'name' must be a letter or underscore"),
    Case("dataset_name_as_a_boolean", as_json(name=False), "schema: 'name' must be a string"),
    Case("dataset_name_as_a_number", as_json(name=0), "schema: 'name' must be a string"),
    Case("description_as_a_list", as_json(description=["x"]), "schema: 'description' must be a string"),
    Case("delimiter_as_a_number", as_json(delimiter=9), "'delimiter' must be one character"),
    Case("threshold_as_a_string", as_json(reject_threshold="0.1"), "'reject_threshold' must be a number"),
    Case("threshold_as_a_boolean", as_json(reject_threshold=True), "'reject_threshold' must be a number"),
    Case("type_as_a_list", as_json(amount={"type": ["integer"]}), "unknown type ['integer']"),
    Case("required_as_a_string", as_json(amount={"required": "yes"}), "'required' must be true or false"),
    Case("required_as_a_number", as_json(amount={"required": 1}), "'required' must be true or false"),
    Case("unique_as_a_number", as_json(amount={"unique": 0}), "'unique' must be true or false"),
    Case("indexed_as_a_string", as_json(amount={"indexed": "true"}), "'indexed' must be true or false"),
    Case("max_length_as_a_string", as_json(amount={"max_length": "10"}), "'max_length' must be a non-negative integer"),
    Case("max_length_as_a_boolean", as_json(amount={"max_length": True}), "'max_length' must be a non-negative"),
    Case("min_as_a_string", as_json(amount={"min": "0"}), "field 'amount': 'min' must be a number"),
    Case("source_as_a_number", as_json(amount={"source": 5}), "'source' must be a string"),
    Case("aliases_as_a_string", as_json(amount={"aliases": "amt"}), "aliases: must be a list of strings"),
    Case("transforms_as_a_string", as_json(amount={"transforms": "strip"}), "transforms: must be a list of strings"),
    Case("null_values_of_numbers", as_json(amount={"null_values": [0]}), "null_values: must be a list of strings"),
    Case("choices_as_a_string", as_json(amount={"choices": "1,2"}), "'choices' must be a non-empty list"),
    Case("pattern_as_a_number", as_json(amount={"pattern": 5}), "'pattern' must be a string"),
    Case("field_description_as_a_number", as_json(amount={"description": 5}), "'description' must be a string"),
    Case(
        "timezone_as_a_list",
        as_json(amount={"type": "datetime", "default_timezone": ["UTC"]}),
        "'default_timezone' must be a string",
    ),
    Case("formats_as_a_string", as_json(amount={"type": "date", "formats": "%d/%m/%Y"}), "formats: must be a list"),
    Case("separator_as_a_number", as_json(amount={"thousands_separator": 1}), "must be a single character"),
    # Huge values.
    Case("a_1mb_dataset_name", as_json(name="n" * MB), f"name: is {MB} characters long"),
    Case("a_1mb_field_name", as_json(amount={"name": "n" * MB}), f"fields[1].name: is {MB} characters long"),
    Case("a_1mb_description", as_json(amount={"description": "d" * MB}), f"fields[1].description: is {MB} characters"),
    Case("a_1mb_key_name", as_json(amount={"k" * MB: 1}), f"fields[1]: a key is {MB} characters long"),
    Case("max_length_of_10_30", as_json(amount={"max_length": 10**30}), "fields[1].max_length: is beyond the 64-bit"),
    Case("min_beyond_bigint", as_json(amount={"min": 2**63}), "fields[1].min: is beyond the 64-bit integer range"),
    Case("min_below_bigint", as_json(amount={"min": -(2**63) - 1}), "fields[1].min: is beyond the 64-bit"),
    # An integer field's bounds spelt as floats: 1e308 would be stored as a 309-digit integer.
    Case("max_of_1e308", as_json(amount={"max": 1e308}), "fields[1].max: is beyond the 64-bit integer range"),
    Case("min_of_minus_1e19", as_json(amount={"min": -1e19}), "fields[1].min: is beyond the 64-bit integer range"),
    Case("max_of_2_63_as_a_float", as_json(amount={"max": 2.0**63}), "fields[1].max: is beyond the 64-bit integer"),
    Case("a_choice_of_1e300", as_json(amount={"choices": [1, 1e300]}), "fields[1].choices[1]: is beyond the 64-bit"),
    Case("a_choice_of_10_30_text", as_json(amount={"choices": ["1e30"]}), "fields[1].choices[0]: is beyond the 64"),
    Case(
        "a_float_bound_of_1e400",
        lambda s: json.dumps(document(s, amount={"type": "float", "min": 0})).replace('"min": 0', '"min": 1e400'),
        "fields[1].min: must be a finite number",
        "too large",
    ),
    Case(
        "a_nan_bound",
        lambda s: json.dumps(document(s, amount={"type": "float", "min": 0})).replace('"min": 0', '"min": NaN'),
        "fields[1].min: must be a finite number",
        "NaN is not valid JSON",
    ),
    Case(
        "100k_fields",
        lambda s: json.dumps({**document(s), "fields": [{"name": f"f{i}"} for i in range(100_000)]}),
        "fields: has 100000 fields; the limit is 1000",
    ),
    Case("20k_choices", as_json(amount={"choices": list(range(20_000))}), "fields[1].choices: has 20000 items"),
    Case("nested_50_deep", as_json(amount={"description": nested(50)}), "fields[1].description: is nested deeper"),
    Case(
        "nested_100k_deep",
        lambda s: '{"slug": "' + s + '", "fields": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "The schema file is nested too deeply",
        "nesting too deep",
    ),
    # Unknown keys are errors (a typo is reported, not ignored).
    Case("an_unknown_dataset_key", as_json(colour="red"), "schema: unknown key 'colour'"),
    Case("an_unknown_field_key", as_json(amount={"requird": True}), "field 'amount': unknown key 'requird'"),
    # Not JSON, or not a schema.
    Case("invalid_json", lambda s: '{"slug": "' + s + '",', "The schema file is not valid JSON", "JSON parse error"),
    Case("a_json_list", lambda s: "[]", "The schema must be a JSON object", "Expected a JSON object"),
]
IDS = [c.id for c in CASES]


def one_line(message: str) -> str:
    assert "\n" not in message, message[:500]
    assert len(message) < 4000, message[:500]
    return message


@pytest.fixture
def manager_client(db: None) -> Any:
    """A manager of the dataset ``sales`` (created from a valid file), over the API."""
    result = dataset_apply(spec=schema_loads(json.dumps(document("sales"))))
    user = UserFactory(username="manager")
    user.user_permissions.add(Permission.objects.get(codename="add_dataset"))
    DatasetGrant.objects.create(dataset=result.dataset, user=user, role=DatasetRole.MANAGER)
    return bearer(user)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_service_refuses_an_invalid_schema_file(case: Case) -> None:
    with pytest.raises(ValidationError) as exc:
        dataset_apply(spec=schema_loads(case.text("things")))

    assert any(case.expect in one_line(m) for m in exc.value.messages), exc.value.messages[:5]
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dataset_apply_refuses_an_invalid_schema_file_in_one_line(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(case.text("things"), encoding="utf-8", errors="surrogatepass")

    with pytest.raises(CommandError) as exc:
        call_command("dataset_apply", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    message = one_line(str(exc.value))
    assert message.startswith(f"Invalid schema in {path}: ")
    assert case.expect in message
    assert not Dataset.objects.exists()


def _api_message(case: Case, response: Any) -> str:
    assert response.status_code == 400, response.content[:300]
    error = error_of(response)
    return one_line(error["message"] + " " + json.dumps(error["details"]))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_api_answers_400_to_an_invalid_schema_on_create(case: Case, manager_client: Any) -> None:
    body = case.text("things").encode("utf-8", "surrogatepass")

    response = manager_client.post(f"{API}/datasets/", body, content_type="application/json")

    assert (case.api_expect or case.expect) in _api_message(case, response)
    assert list(Dataset.objects.values_list("slug", flat=True)) == ["sales"]


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_api_answers_400_to_an_invalid_schema_on_update(case: Case, method: str, manager_client: Any) -> None:
    body = case.text("sales").encode("utf-8", "surrogatepass")

    response = getattr(manager_client, method)(f"{API}/datasets/sales/", body, content_type="application/json")

    assert (case.api_expect or case.expect) in _api_message(case, response)
    assert SchemaVersion.objects.get().number == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_admin_import_shows_the_problem_as_a_form_error(case: Case) -> None:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    upload = io.BytesIO(case.text("things").encode("utf-8", "surrogatepass"))
    upload.name = "schema.json"

    response = client.post(reverse("admin:ingestion_dataset_import"), {"schema_file": upload})

    assert response.status_code == 200
    errors = response.context["form"].errors["schema_file"]
    assert any(case.expect in one_line(e) for e in errors), errors[:5]
    assert escape(case.expect) in response.content.decode()
    assert not Dataset.objects.exists()


def test_a_schema_file_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({**document("things"), "description": "x" * MAX_SCHEMA_SIZE}))

    with pytest.raises(ValidationError, match="larger than"):
        schema_loads(path.read_bytes())
    with pytest.raises(CommandError, match=r"larger than \d+ bytes"):
        call_command("dataset_apply", str(path), stdout=io.StringIO())
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with path.open("rb") as fh:
        response = client.post(reverse("admin:ingestion_dataset_import"), {"schema_file": fh})
    assert response.context["form"].errors["schema_file"] == [
        f"The schema file is larger than {MAX_SCHEMA_SIZE} bytes."
    ]
    assert not Dataset.objects.exists()


def test_a_valid_file_still_goes_through_every_door(tmp_path: Path, manager_client: Any) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(document("things")))
    out = io.StringIO()
    call_command("dataset_apply", str(path), json=True, stdout=out)
    assert json.loads(out.getvalue())["created"] is True
    created = manager_client.post(f"{API}/datasets/", document("events"), format="json")
    assert created.status_code == 201
    updated = manager_client.patch(f"{API}/datasets/sales/", {"name": "Sales €"}, format="json")
    assert updated.status_code == 200 and updated.json()["name"] == "Sales €"


def test_an_integer_field_with_float_bounds_round_trips_through_the_api(manager_client: Any) -> None:
    # Floats within the 64-bit range are whole-number bounds; what GET answers must POST again.
    sent = document("bounded", amount={"min": -9e18, "max": 9e18, "choices": [1.0, 9e18]})
    created = manager_client.post(f"{API}/datasets/", sent, content_type="application/json")
    assert created.status_code == 201, created.content[:300]

    read = manager_client.get(f"{API}/datasets/bounded/").json()
    again = {**read, "slug": "bounded_again"}
    for key in ("schema_version", "role", "url", "links", "created_at", "updated_at"):
        again.pop(key, None)
    response = manager_client.post(f"{API}/datasets/", again, content_type="application/json")

    assert response.status_code == 201, response.content[:300]
    fields = {f["name"]: f for f in manager_client.get(f"{API}/datasets/bounded_again/").json()["fields"]}
    assert (fields["amount"]["min"], fields["amount"]["max"]) == (-9 * 10**18, 9 * 10**18)
