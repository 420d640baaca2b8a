"""The pagination registry (ingestion/http/pagination): every registered style is wired everywhere.

A style is one module; the model's choices, the API, the console, the
OpenAPI document, the docs, the spec's and the source's checks and the pull
itself must all know it. A style registered and forgotten somewhere fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from api.serializers.sources import SourceSerializer
from ingestion.http.pagination import PAGINATION_STYLES, pagination_style
from ingestion.http.pull import PullSpec
from ingestion.models import Dataset, Source
from ingestion.services.sources import source_clean
from processing.admin.sources import SourceForm
from tests.ingestion.test_http_pull import test_every_pagination_style_pulls_every_record_once as pulled_styles
from tests.markdown import code_names, markdown_table

NAMES = list(PAGINATION_STYLES)
# Every (style, field it needs) pair.
NEEDS = [(style.name, name) for style in PAGINATION_STYLES.values() for name in style.needs]
# A value for each field some style needs.
FILLED = {"page_param": "p", "size_param": "limit", "next_path": "meta.next"}


def test_the_model_choices_are_the_registry() -> None:
    assert list(Source.Pagination.values) == NAMES
    assert list(Source.Pagination.labels) == [s.label for s in PAGINATION_STYLES.values()]
    assert Source._meta.get_field("pagination").choices == [(s.name, s.label) for s in PAGINATION_STYLES.values()]
    assert all(pagination_style(name).name == name for name in NAMES)


def test_the_api_and_the_console_offer_every_style() -> None:
    assert list(SourceSerializer().fields["pagination"].choices) == NAMES
    assert [value for value, _ in SourceForm().fields["pagination"].choices] == NAMES


@pytest.mark.django_db
def test_the_openapi_document_lists_every_style() -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema: dict[str, Any] = yaml.safe_load(response.content)

    assert schema["components"]["schemas"]["Source"]["properties"]["pagination"] == {
        "$ref": "#/components/schemas/PaginationEnum"
    }
    assert schema["components"]["schemas"]["PaginationEnum"]["enum"] == NAMES


def test_the_docs_table_has_a_row_per_style_naming_the_fields_it_needs() -> None:
    rows = markdown_table("sources.md", "`pagination`")

    assert [code_names(row["`pagination`"]) for row in rows] == [[name] for name in NAMES]
    for row, style in zip(rows, PAGINATION_STYLES.values(), strict=True):
        for name in style.needs:
            assert f"`{name}`" in row["requests"], (style.name, name)


def test_every_style_is_pulled_from_a_real_api() -> None:
    (parametrize,) = [mark for mark in pulled_styles.pytestmark if mark.name == "parametrize"]
    pulled = {options["pagination"] for _, options, _ in parametrize.args[1]}
    # "none" is pulled by test_without_pagination_one_request_is_made.
    assert pulled | {"none"} == set(NAMES)


@pytest.mark.parametrize(("style", "field"), NEEDS)
def test_a_spec_without_a_field_its_style_needs_is_refused(style: str, field: str) -> None:
    PullSpec(url="https://api.example.com/items", pagination=style, **FILLED)  # complete: accepted

    with pytest.raises(ValueError, match=f"{style} pagination needs {field}"):
        PullSpec(url="https://api.example.com/items", pagination=style, **{**FILLED, field: ""})


@pytest.mark.django_db
@pytest.mark.parametrize(("style", "field"), NEEDS)
def test_a_source_without_a_field_its_style_needs_gets_the_styles_message(
    sales: Dataset, style: str, field: str
) -> None:
    source = Source(dataset=sales, name="partner", url="https://93.184.215.14/items", pagination=style, **FILLED)
    source_clean(source, secret=None)  # complete: accepted

    setattr(source, field, "")
    with pytest.raises(ValidationError) as excinfo:
        source_clean(source, secret=None)

    assert set(excinfo.value.message_dict) == {field}
    assert pagination_style(style).needs[field] in excinfo.value.message_dict[field]
