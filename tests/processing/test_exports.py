"""The export-format registry (processing/exports): every registered format is wired everywhere.

A format is one module; the API's ``format`` parameter, its responses in
the OpenAPI document, the commands' ``--format`` choices and the docs must
all know it, and each door must give the same file. A format registered and
forgotten somewhere fails here.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from processing.exports import DEFAULT_FORMAT, EXPORT_FORMATS, export_format, rejected_export, rejected_formats
from processing.management.commands import export_records, export_rejected
from processing.models import Run
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, sales_row
from tests.factories import UserFactory
from tests.markdown import code_names, markdown_table

pytestmark = pytest.mark.django_db
NAMES = list(EXPORT_FORMATS)
EXPORT = "/api/v1/datasets/sales/export/"


@pytest.fixture
def loaded(sales: Dataset, csv_file: Callable[..., Path]) -> Run:
    """Sales with two records and one rejected row."""
    path = csv_file("\n".join([SALES_HEADER, sales_row(1), sales_row(2), "BAD,not-a-date,books,1,1,x@x.com,US,,yes"]))
    with path.open("rb") as fh:
        return file_ingest(dataset=sales, source=fh, original_name=path.name)


@pytest.fixture
def viewer(sales: Dataset) -> APIClient:
    user = UserFactory()
    DatasetGrant.objects.create(dataset=sales, user=user, role=DatasetRole.VIEWER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def format_choices(command: Any) -> list[str]:
    parser = command.Command().create_parser("manage.py", command.__name__.rsplit(".", 1)[-1])
    (action,) = [a for a in parser._actions if isinstance(a, argparse.Action) and "--format" in a.option_strings]
    assert action.default == DEFAULT_FORMAT
    return list(action.choices)


def test_the_commands_offer_every_format() -> None:
    assert format_choices(export_records) == NAMES
    assert format_choices(export_rejected) == rejected_formats()
    assert all(export_format(name).name == name for name in NAMES)


def test_the_openapi_document_lists_every_format_and_its_media_type() -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    operation = yaml.safe_load(response.content)["paths"]["/api/v1/datasets/{slug}/export/"]["get"]

    (parameter,) = [p for p in operation["parameters"] if p["name"] == "format"]
    assert parameter["schema"]["enum"] == NAMES
    assert list(operation["responses"]["200"]["content"]) == [f.media_type for f in EXPORT_FORMATS.values()]


def test_the_docs_list_every_format_in_the_api_table_and_the_commands() -> None:
    rows = markdown_table("api.md", "`format`")

    assert [code_names(row["`format`"]) for row in rows] == [[name] for name in NAMES]
    for row, fmt in zip(rows, EXPORT_FORMATS.values(), strict=True):
        assert row["`Content-Type`"] == f"`{fmt.content_type}`"
        assert row["file"] == f"`<slug>.{fmt.extension}`"
        assert row["rejected rows (`export_rejected`)"] == ("yes" if fmt.rejected else "no")
    assert "(default)" in rows[NAMES.index(DEFAULT_FORMAT)]["`format`"]

    commands = {
        row["command"].split()[0].strip("`"): row["command"] for row in markdown_table("pipeline.md", "command")
    }
    assert f"--format {'|'.join(NAMES)}" in commands["export_records"]
    assert f"--format {'|'.join(rejected_formats())}" in commands["export_rejected"]


@pytest.mark.parametrize("name", NAMES)
def test_the_api_and_the_command_give_the_same_file_in_each_format(
    name: str, loaded: Run, viewer: APIClient, tmp_path: Path
) -> None:
    fmt = export_format(name)
    response = viewer.get(EXPORT, {"format": name})

    assert response.status_code == 200
    assert response["Content-Type"] == fmt.content_type
    assert response["Content-Disposition"] == f'attachment; filename="sales.{fmt.extension}"'
    served = b"".join(response.streaming_content)
    target = tmp_path / f"sales.{fmt.extension}"
    call_command("export_records", dataset="sales", format=name, output=str(target), stderr=io.StringIO())
    assert target.read_bytes() == served
    assert b"S2" in served


@pytest.mark.parametrize("name", rejected_formats())
def test_the_command_exports_rejected_rows_in_each_format_that_offers_them(
    name: str, loaded: Run, tmp_path: Path
) -> None:
    target = tmp_path / f"rejected.{export_format(name).extension}"
    call_command("export_rejected", run=loaded.pk, format=name, output=str(target), stderr=io.StringIO())

    assert target.read_bytes() == "".join(rejected_export(loaded, name)).encode()
    assert "not-a-date" in target.read_text(encoding="utf-8")


def test_a_format_without_a_rejected_rows_writer_is_refused_for_them(loaded: Run) -> None:
    for name in set(NAMES) - set(rejected_formats()):
        with pytest.raises(ValueError, match="unknown format"):
            rejected_export(loaded, name)
