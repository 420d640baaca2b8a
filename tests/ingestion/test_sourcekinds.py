"""The source-kind registry (ingestion/sourcekinds): every kind, and every field of a kind, is wired everywhere.

A source's fields are declared once, by its kind. The model's choices, what
a client may set, the API's serializer, the console's form, the OpenAPI
document and the docs must all follow; a kind or a field registered and
forgotten somewhere, or a model field no kind declares, fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from api.serializers.sources import API_NAMES, SourceSerializer
from ingestion.models import Dataset, Source
from ingestion.services.sources import SOURCE_FIELDS, source_create
from ingestion.sourcekinds import (
    COMMON_FIELDS,
    DEFAULT_KIND,
    SCHEDULE_FIELDS,
    SECRET_FIELD,
    SOURCE_KINDS,
    read_only_fields,
    source_fields,
    source_kind,
)
from processing.admin.sources import SourceAdmin, SourceForm
from tests.markdown import code_names, markdown_table

NAMES = list(SOURCE_KINDS)
# Every field of every kind, with the common ones.
ALL_FIELDS = list(
    dict.fromkeys([*COMMON_FIELDS, *(f for kind in SOURCE_KINDS.values() for f in kind.fields), *SCHEDULE_FIELDS])
)
# Model fields no client sees as such: the key, the encrypted secret (set as SECRET_FIELD), bookkeeping.
INTERNAL = {"id", "secret_encrypted", "created_by", "created_at", "updated_at"}


def documented(cell: str) -> list[str]:
    """The field names a docs cell names: as code, or the plain word for the secret."""
    return [*code_names(cell), *([SECRET_FIELD] if SECRET_FIELD in cell.replace("`", " ").split() else [])]


def test_the_model_choices_are_the_registry() -> None:
    assert list(Source.Kind.values) == NAMES
    assert list(Source.Kind.labels) == [k.label for k in SOURCE_KINDS.values()]
    assert Source._meta.get_field("kind").default == DEFAULT_KIND == NAMES[0]
    assert all(source_kind(name).name == name for name in NAMES)


def test_what_a_client_may_set_is_what_the_kinds_declare() -> None:
    assert source_fields() == SOURCE_FIELDS
    model_fields = {f.name for f in Source._meta.get_fields() if f.concrete}
    # Every declared field is a model field, and every model field is declared (or internal).
    assert set(ALL_FIELDS) - {SECRET_FIELD} <= model_fields
    assert model_fields - INTERNAL == set(ALL_FIELDS) - {SECRET_FIELD}
    assert set(SOURCE_FIELDS) == set(ALL_FIELDS) - {SECRET_FIELD, *read_only_fields()}


def test_the_api_has_every_field_of_every_kind_and_offers_every_kind() -> None:
    fields = SourceSerializer().fields
    for name in ALL_FIELDS:
        for api_name in API_NAMES.get(name, (name,)):
            assert api_name in fields, name
    assert fields[SECRET_FIELD].write_only
    assert all(fields[name].read_only for name in read_only_fields())
    assert list(fields["kind"].choices) == NAMES


def test_the_console_form_has_every_field_of_every_kind_and_offers_every_kind() -> None:
    shown = [name for _, options in SourceAdmin.fieldsets for name in options["fields"]]
    assert set(ALL_FIELDS) <= set(shown)
    assert len(shown) == len(set(shown))
    form = SourceForm()
    assert set(SOURCE_FIELDS) | {SECRET_FIELD} <= set(form.fields)
    assert [value for value, _ in form.fields["kind"].choices] == NAMES


@pytest.mark.django_db
def test_the_openapi_document_lists_every_kind() -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema: dict[str, Any] = yaml.safe_load(response.content)["components"]["schemas"]

    assert schema["Source"]["properties"]["kind"] == {"$ref": "#/components/schemas/KindEnum"}
    assert schema["KindEnum"]["enum"] == NAMES


def test_the_docs_describe_every_kind_and_every_field() -> None:
    kinds = markdown_table("sources.md", "`kind`")
    assert [code_names(row["`kind`"]) for row in kinds] == [[name] for name in NAMES]
    for row, kind in zip(kinds, SOURCE_KINDS.values(), strict=True):
        listed = [name.strip().strip("`") for name in row["fields"].split(",")]
        assert listed == [f for f in kind.fields if f not in kind.read_only], kind.name

    # Each field is described in the fields table: in its own row, or in the row of the field it goes with.
    table = markdown_table("sources.md", "field")
    described = [name for row in table for name in documented(f"{row['field']} {row['meaning']}")]
    assert set(ALL_FIELDS) - set(read_only_fields()) <= set(described)


@pytest.mark.django_db
def test_a_source_created_without_a_kind_is_of_the_default_kind(sales: Dataset) -> None:
    source = source_create(dataset=sales, data={"name": "partner", "url": "https://93.184.215.14/items"})

    assert Source.objects.get(pk=source.pk).kind == DEFAULT_KIND
