"""The admin and ingest_csv doors on the intake checks: same decisions, same words, shown where people look."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from ingestion.models import Dataset, DatasetRole, RawFile
from tests.conftest import SALES_HEADER, sales_row
from tests.records import stored_record

from .test_admin import client_for, upload

pytestmark = pytest.mark.django_db
GREEK = ["Λεωνίδας Παπαδόπουλος από την Αθήνα", "Μαρία Γεωργίου στη Θεσσαλονίκη", "Νίκος Ιωάννου στην Πάτρα"]


def greek_file(csv_file: Callable[..., Path]) -> Path:
    rows = [sales_row(i, description=GREEK[i % 3]) for i in range(1, 31)]
    return csv_file("\n".join([SALES_HEADER, *rows]) + "\n", encoding="iso8859-7")


def sjis_file(csv_file: Callable[..., Path]) -> Path:
    return csv_file("\n".join([SALES_HEADER, sales_row(1, description="山田")]) + "\n", encoding="shift_jis")


def run_command(*args: Any, **options: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.fixture
def operator(sales: Dataset) -> Client:
    return client_for("Operators", grants={sales: DatasetRole.INGESTER})


# --- admin -------------------------------------------------------------------------------


def test_the_preview_shows_a_detected_encoding_with_its_confidence_and_the_declared_delimiter(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    page = upload(operator, sales, greek_file(csv_file)).content.decode()

    raw = RawFile.objects.get()
    assert f"detected with confidence {raw.encoding_score:.0%}" in page
    assert "(declared by the dataset)" in page
    assert "Detected <strong>" not in page


def test_an_undecided_encoding_is_chosen_in_the_preview_and_then_loads_exactly(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    page = upload(operator, sales, sjis_file(csv_file)).content.decode()
    raw = RawFile.objects.get()

    assert "The encoding could not be decided" in page and "cp932" in page
    assert 'id="confirm"' not in page
    preview_url = reverse("admin:processing_run_preview", args=[raw.pk])
    page = operator.post(
        preview_url, {"action": "dialect", "encoding": "shift_jis", "delimiter": ","}, follow=True
    ).content.decode()
    assert "shift_jis (declared for this file)" in page
    assert 'id="confirm"' in page


def test_the_upload_form_offers_the_legacy_encodings(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    upload(operator, sales, sjis_file(csv_file), encoding="shift_jis")

    raw = RawFile.objects.get()
    assert (raw.encoding, raw.encoding_confidence) == ("shift_jis", "given")


def test_the_admin_refuses_a_gzip_file_with_a_form_error_and_keeps_nothing(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    path = csv_file(gzip.compress(("\n".join([SALES_HEADER, sales_row(1)]) + "\n").encode()), name="sales.csv.gz")

    page = upload(operator, sales, path).content.decode()

    assert "This is not a text CSV file (looks like a gzip file; decompress it first)." in page
    assert not RawFile.objects.exists()
    assert not [p for p in data_dir.rglob("*") if p.is_file()]


# --- ingest_csv --------------------------------------------------------------------------


def test_ingest_csv_json_shows_where_the_encoding_came_from(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    summary = json.loads(run_command("ingest_csv", str(greek_file(csv_file)), dataset="sales", json=True))

    assert summary["status"] == "succeeded"
    file = summary["file"]
    assert file["encoding_source"] == "detected" and file["encoding_confidence"] > 0.5
    assert "detected with confidence" in file["encoding_text"]
    assert file["delimiter_text"] == "',' (declared by the dataset)"
    assert stored_record(key="S2").data["description"] == GREEK[2]


def test_ingest_csv_text_output_and_dry_run_show_the_encoding_source(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    path = greek_file(csv_file)
    dry = json.loads(run_command("ingest_csv", str(path), dataset="sales", dry_run=True, json=True))
    text = run_command("ingest_csv", str(path), dataset="sales")

    assert dry["encoding_source"] == "detected" and "detected with confidence" in dry["encoding_text"]
    assert "detected with confidence" in text
    assert "delimiter ',' (declared by the dataset)" in text


def test_ingest_csv_fails_an_undecided_encoding_then_loads_it_declared(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    path = sjis_file(csv_file)

    with pytest.raises(SystemExit) as exited:
        run_command("ingest_csv", str(path), dataset="sales")
    run_command("ingest_csv", str(path), dataset="sales", encoding="shift_jis")

    assert exited.value.code == 3
    assert stored_record(key="S1").data["description"] == "山田"


def test_ingest_csv_refuses_a_zip_file_with_a_command_error(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sales.csv", SALES_HEADER + "\n" + sales_row(1) + "\n")
    path = csv_file(buffer.getvalue(), name="sales.zip")

    with pytest.raises(CommandError, match=r"not a text CSV file \(looks like a ZIP archive"):
        run_command("ingest_csv", str(path), dataset="sales")
    assert not RawFile.objects.exists()
    assert not [p for p in data_dir.rglob("*") if p.is_file()]


# --- infer_schema: the same encoding decision and binary refusal as uploads -------------------


def infer_command(path: Path, **options: Any) -> tuple[dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("infer_schema", str(path), stdout=out, stderr=err, json=True, **options)
    return json.loads(out.getvalue()), err.getvalue()


def test_infer_schema_refuses_an_undecided_encoding_naming_the_candidates_and_encoding_option(
    csv_file: Callable[..., Path],
) -> None:
    path = sjis_file(csv_file)

    with pytest.raises(CommandError) as excinfo:
        infer_command(path)

    message = str(excinfo.value)
    assert message.startswith("the file's encoding could not be decided (it could be ")
    assert "cp932" in message
    assert "--encoding" in message


def test_infer_schema_reads_a_file_with_the_encoding_given(csv_file: Callable[..., Path]) -> None:
    result, _ = infer_command(sjis_file(csv_file), encoding="shift_jis")

    assert result["report"]["encoding"] == "shift_jis"
    assert result["report"]["encoding_text"] == "shift_jis (declared for this file)"


def test_infer_schema_reports_a_detected_encoding_as_uploads_do(csv_file: Callable[..., Path]) -> None:
    result, _ = infer_command(greek_file(csv_file))

    assert result["report"]["encoding"] == "cp1253"
    assert result["report"]["encoding_text"].startswith("cp1253 (detected with confidence ")


def test_infer_schema_refuses_a_zip_file_renamed_csv(csv_file: Callable[..., Path]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sales.csv", SALES_HEADER + "\n" + sales_row(1) + "\n")
    path = csv_file(buffer.getvalue(), name="sales.csv")

    with pytest.raises(CommandError, match=r"^This is not a text CSV file \(looks like a ZIP archive"):
        infer_command(path)


def test_infer_schema_refuses_an_unknown_encoding_name(csv_file: Callable[..., Path]) -> None:
    with pytest.raises(CommandError, match="Unknown encoding 'klingon'"):
        infer_command(greek_file(csv_file), encoding="klingon")
