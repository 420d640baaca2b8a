"""The field-type registry (ingestion/fieldtypes): every registered type is wired everywhere.

One dataset with a field of each type goes through the real doors (schema
file, pipeline, Parquet export, the dataset OpenAPI document, the database),
so a type that is registered but forgotten somewhere fails here.
"""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.checks import Error
from django.core.exceptions import ValidationError
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from api.serializers.datasets import SchemaFieldSerializer
from ingestion import checks
from ingestion.fieldtypes import FIELD_TYPES, FieldError, field_type
from ingestion.fieldtypes.base import ORDERED_OPERATORS
from ingestion.models import Dataset, DatasetGrant, DatasetRole, FieldType
from ingestion.schema import FieldSpec, schema_parse
from ingestion.services.datasets import dataset_apply
from processing.exports import records_export_parquet
from processing.models import RunStatus
from processing.pipeline.fields import compile_field
from processing.record_queries import OPERATORS
from processing.services.runs import file_ingest
from tests.factories import UserFactory
from tests.records import records

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schema.md"

# Per type: a typical raw value, what it is stored as, a value it refuses
# (None for a verbatim type, which keeps any text), and the value the
# database column gives back.
SAMPLES: dict[str, tuple[str, Any, str | None, Any]] = {
    "string": ("  Ada Lovelace ", "  Ada Lovelace ", None, "  Ada Lovelace "),
    "integer": ("1,234", 1234, "12.5", 1234),
    "decimal": ("1,234.50", "1234.50", "1e3", Decimal("1234.50")),
    "float": ("1.5e3", 1500.0, "inf", 1500.0),
    "boolean": ("Yes", True, "maybe", True),
    "date": ("2024-03-01", "2024-03-01", "2024-02-30", date(2024, 3, 1)),
    "datetime": (
        "2024-03-01T12:00:00+02:00",
        "2024-03-01T10:00:00.000000Z",
        "yesterday",
        datetime(2024, 3, 1, 10, tzinfo=UTC),
    ),
    "email": ("ada@example.com", "ada@example.com", "ada@", "ada@example.com"),
    "url": (
        "https://example.com/a?b=1",
        "https://example.com/a?b=1",
        "ftp://example.com/",
        "https://example.com/a?b=1",
    ),
}
# What SQLite stores a value as in a column of each declared type (its affinity at work).
SQLITE_STORAGE = {"TEXT": "text", "INTEGER": "integer", "REAL": "real"}


def test_the_registry_and_the_model_choices_name_the_same_types() -> None:
    assert list(FIELD_TYPES) == list(FieldType.values)
    assert [t.label for t in FIELD_TYPES.values()] == list(FieldType.labels)
    assert checks.field_type_mismatches() == []
    assert all(field_type(name).name == name for name in FIELD_TYPES)


def test_a_type_registered_without_its_model_choice_fails_the_system_check(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = dataclasses.replace(FIELD_TYPES["string"], name="uuid", label="Uuid")
    monkeypatch.setattr(checks, "FIELD_TYPES", {**FIELD_TYPES, "uuid": extra})

    errors = checks.field_types_match_choices()

    assert [(type(e), e.id) for e in errors] == [(Error, "ingestion.E001")]
    assert "'uuid' is registered but not a FieldType choice" in errors[0].msg


def test_decimal_keys_are_one_text_per_number() -> None:
    key_text = field_type("decimal").key_text
    assert key_text("1.50") == key_text("1.5") == key_text("01.5") == "1.5"
    assert key_text("0.00") == key_text("-0") == "0"


def test_every_type_has_a_sample_here() -> None:
    # A new type must say here what it accepts and refuses.
    assert set(SAMPLES) == set(FIELD_TYPES)


@pytest.mark.parametrize("name", list(FIELD_TYPES))
def test_each_converter_accepts_a_typical_value_and_refuses_a_bad_one(name: str) -> None:
    kind = field_type(name)
    typical, stored, bad, _ = SAMPLES[name]
    spec = FieldSpec(name="f", type=name, options={"thousands_separator": ","} if kind.numeric else {})

    # The pipeline's compiled field uses the registered converter.
    assert compile_field(spec)(typical) == stored
    assert isinstance(kind.key_text(stored), str)
    if kind.verbatim:
        assert kind.converter(spec)(typical) == typical
        assert compile_field(spec)("   ") == "   "  # spaces are a value of a verbatim type, not a null
        return
    assert kind.converter(spec)(typical) == stored
    assert bad is not None
    with pytest.raises(FieldError, match=re.escape(repr(bad))):
        compile_field(spec)(bad)
    assert compile_field(spec)("   ") is None


@pytest.mark.parametrize("name", list(FIELD_TYPES))
def test_each_type_declares_what_it_accepts_in_a_schema_file(name: str) -> None:
    kind = field_type(name)
    field = {"name": "f", "type": name, **dict.fromkeys(kind.options)}
    errors = _schema_errors(field)
    # Its own options are known keys (their values may be wrong here; the key is not).
    assert not any("unknown key" in e for e in errors)
    assert any(
        "unknown key 'no_such_option'" in e for e in _schema_errors({"name": "f", "type": name, "no_such_option": 1})
    )
    bound = {"date": "2024-01-01", "datetime": "2024-01-01T00:00:00Z"}.get(name, 0)
    bounds = _schema_errors({"name": "f", "type": name, "min": bound})
    assert (not bounds) == kind.ordered, bounds
    if not kind.ordered:
        assert bounds == ["field 'f': 'min' applies to numbers, dates and datetimes; use min_length/max_length"]
    assert set(kind.operators) <= set(ORDERED_OPERATORS) | {"contains"}
    assert "eq" in kind.operators


def _schema_errors(field: dict[str, Any]) -> list[str]:
    id_field = {"name": "id", "type": "string", "required": True}
    try:
        schema_parse({"slug": "t", "name": "t", "key": ["id"], "fields": [id_field, field]})
    except ValidationError as exc:
        return list(exc.messages)
    return []


def test_each_type_declares_its_sql_types() -> None:
    for kind in FIELD_TYPES.values():
        assert kind.sql_type in {"text", "bigint", "numeric", "double precision", "boolean", "date", "timestamptz"}
        assert kind.sqlite_type in SQLITE_STORAGE


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FIELD_TYPES))
def test_each_sql_type_holds_the_stored_value(name: str) -> None:
    kind = field_type(name)
    _, stored, _, read_back = SAMPLES[name]
    column_type = kind.sql_type if connection.vendor == "postgresql" else kind.sqlite_type
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE fieldtype_probe (value {column_type})")
        try:
            cursor.execute("INSERT INTO fieldtype_probe (value) VALUES (%s)", [stored])
            if connection.vendor == "postgresql":
                cursor.execute("SELECT value FROM fieldtype_probe")
                assert cursor.fetchone()[0] == read_back
            else:
                cursor.execute("SELECT value, typeof(value) FROM fieldtype_probe")
                value, storage = cursor.fetchone()
                assert storage == SQLITE_STORAGE[kind.sqlite_type]
                assert value == (int(stored) if kind.sqlite_type == "INTEGER" else stored)
        finally:
            cursor.execute("DROP TABLE fieldtype_probe")


@pytest.fixture
def every_type(db: None) -> Dataset:
    """A dataset with one field of each registered type, loaded with a typical row and a row of nulls."""
    fields = [{"name": "id", "type": "string", "required": True}]
    for name, kind in FIELD_TYPES.items():
        field: dict[str, Any] = {"name": f"f_{name}", "type": name}
        if kind.numeric:
            field["thousands_separator"] = ","
        fields.append(field)
    dataset = dataset_apply(
        spec=schema_parse(
            {"slug": "every-type", "name": "Every type", "key": ["id"], "delimiter": ";", "fields": fields}
        )
    ).dataset
    header = ";".join(f["name"] for f in fields)
    typical = ";".join(["a", *(SAMPLES[name][0] for name in FIELD_TYPES)])
    empty = ";".join(["b", *("" for _ in FIELD_TYPES)])
    run = file_ingest(
        dataset=dataset, source=io.BytesIO(f"{header}\n{typical}\n{empty}\n".encode()), original_name="t.csv"
    )
    assert run.status == RunStatus.SUCCEEDED, run.error
    return dataset


def test_the_pipeline_stores_what_each_converter_gives(every_type: Dataset) -> None:
    data = records(every_type).get(key="a").data
    assert {name: data[f"f_{name}"] for name in FIELD_TYPES} == {name: s[1] for name, s in SAMPLES.items()}


def test_the_parquet_export_uses_each_types_arrow_type(every_type: Dataset) -> None:
    table = pq.read_table(io.BytesIO(b"".join(records_export_parquet(every_type))))

    rows = {row["_key"]: row for row in table.to_pylist()}
    for name, kind in FIELD_TYPES.items():
        column = f"f_{name}"
        factory, *arguments = kind.arrow_type or ("string",)
        assert table.schema.field(column).type == getattr(pa, factory)(*arguments), name
        _, stored, _, read_back = SAMPLES[name]
        assert rows["a"][column] == (read_back if kind.arrow_type is not None else stored), name
        assert rows["b"][column] is None


@pytest.fixture
def as_viewer(every_type: Dataset) -> APIClient:
    viewer = UserFactory(username="typed-viewer")
    DatasetGrant.objects.create(dataset=every_type, user=viewer, role=DatasetRole.VIEWER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer).access_token}")
    return client


# A filter value equal to the typical stored value, written as people write it in a query.
FILTER_VALUES = {"boolean": "true", "datetime": "2024-03-01T10:00:00Z"}


@pytest.mark.parametrize("name", list(FIELD_TYPES))
def test_each_types_filters_find_the_stored_value(as_viewer: APIClient, name: str) -> None:
    kind = field_type(name)
    value = FILTER_VALUES.get(name, SAMPLES[name][1])
    column = f"f_{name}"

    for op in kind.operators:
        param = column if op == "eq" else f"{column}__{op}"
        query = str(value)[1:4] if op == "contains" else str(value)
        response = as_viewer.get("/api/v1/datasets/every-type/records/", {param: query})
        assert response.status_code == 200, (op, response.json())
        assert [r["key"] for r in response.json()["results"]] == ["a"], op
    for op in set(OPERATORS) - set(kind.operators):
        response = as_viewer.get("/api/v1/datasets/every-type/records/", {f"{column}__{op}": "1"})
        assert response.status_code == 400, op
        assert f"{column} is a {name} field" in str(response.json()), op


def test_the_dataset_openapi_document_uses_each_types_schemas(as_viewer: APIClient) -> None:
    response = as_viewer.get("/api/v1/datasets/every-type/openapi.json")

    assert response.status_code == 200
    document = response.json()
    properties = document["components"]["schemas"]["Data"]["properties"]
    parameters = {
        p["name"]: p["schema"]
        for op in document["paths"].values()
        for m in op.values()
        for p in m.get("parameters", [])
    }
    for name, kind in FIELD_TYPES.items():
        column = f"f_{name}"
        assert properties[column] == {**kind.openapi, "nullable": True}
        assert parameters[column] == dict(kind.openapi_filter)
        suffixes = {p.removeprefix(f"{column}__") for p in parameters if p.startswith(f"{column}__")}
        assert suffixes == set(kind.operators) - {"eq"}


def test_the_schema_field_serializer_offers_every_type_and_its_options() -> None:
    fields = SchemaFieldSerializer().fields
    assert list(fields["type"].choices) == list(FIELD_TYPES)
    for kind in FIELD_TYPES.values():
        assert set(kind.options) <= set(fields), kind.name


def _docs_section(title: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_schema_docs_types_table_lists_exactly_the_registered_types() -> None:
    rows = [line for line in _docs_section("Types and how they are stored").splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `([a-z_]+)`", row).group(1) for row in rows] == list(FIELD_TYPES)  # type: ignore[union-attr]


def test_the_schema_docs_type_key_lists_exactly_the_registered_types() -> None:
    text = DOCS.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("| `type` |"))
    assert re.findall(r"`([a-z_]+)`", line.split("|")[2]) == list(FIELD_TYPES)
