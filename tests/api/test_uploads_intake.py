"""The API upload door: encodings shown with their source, undecided encodings, non-text files, delimiters."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from ingestion.models import RawFile
from processing.services.runs import run_execute
from tests.conftest import sales_row
from tests.records import stored_record

from .conftest import error_of, sales_csv
from .test_uploads import multipart, stored_files

pytestmark = pytest.mark.django_db
GREEK = ["Λεωνίδας Παπαδόπουλος από την Αθήνα", "Μαρία Γεωργίου στη Θεσσαλονίκη", "Νίκος Ιωάννου στην Πάτρα"]


def greek_csv() -> bytes:
    rows = [sales_row(i, description=GREEK[i % 3]) for i in range(1, 31)]
    return sales_csv(rows).encode("iso8859-7")


def test_a_detected_encoding_is_shown_with_its_source_and_confidence_on_the_run(as_ingester: APIClient) -> None:
    response = multipart(as_ingester, greek_csv())
    assert response.status_code == 202, response.content
    run_execute(run_id=response.json()["id"])

    file = as_ingester.get(response["Location"]).json()["file"]

    assert file["encoding_source"] == "detected"
    assert 0.5 < file["encoding_confidence"] <= 1
    assert file["encoding_text"] == f"{file['encoding']} (detected with confidence {file['encoding_confidence']:.0%})"
    assert (file["delimiter_source"], file["delimiter_text"]) == ("declared", "',' (declared by the dataset)")
    assert stored_record(key="S1").data["description"] == GREEK[1]


def test_an_undecided_encoding_fails_the_dry_run_naming_the_candidates_until_declared(as_ingester: APIClient) -> None:
    content = sales_csv([sales_row(1, description="山田")]).encode("shift_jis")

    unsure = multipart(as_ingester, content, dry_run="true").json()
    declared = multipart(as_ingester, content, dry_run="true", encoding="shift_jis").json()

    assert unsure["status"] == "failed"
    assert "could not be decided" in unsure["error"] and "?encoding=" in unsure["error"]
    assert unsure["encoding_source"] == "unsure"
    assert "cp932" in unsure["encoding_candidates"]
    assert (declared["status"], declared["encoding_source"]) == ("succeeded", "given")
    assert declared["encoding"] == "shift_jis"
    assert declared["inserted"] == 1


def test_a_semicolon_file_for_a_comma_dataset_is_explained_in_the_dry_run(as_ingester: APIClient) -> None:
    content = sales_csv([sales_row(1)]).replace(",", ";")

    preview = multipart(as_ingester, content, dry_run="true").json()

    assert preview["status"] == "failed"
    assert "this file looks ';'-separated; the dataset declares ','" in preview["error"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"id,name\n" + bytes(range(256)) * 40, "not a text CSV file (looks like binary data"),
        (b"PK\x03\x04" + bytes(60), "not a text CSV file (looks like a ZIP archive"),
        (b"\x1f\x8b\x08" + bytes(60), "not a text CSV file (looks like a gzip file; decompress it first)"),
    ],
)
@pytest.mark.parametrize("dry_run", ["false", "true"])
def test_a_file_that_is_not_text_is_refused_with_the_same_words_and_nothing_kept(
    as_ingester: APIClient, data_dir: Path, content: bytes, words: str, dry_run: str
) -> None:
    response = multipart(as_ingester, content, content_type="application/octet-stream", dry_run=dry_run)

    assert response.status_code == 422, response.content
    assert words in error_of(response)["message"]
    assert not RawFile.objects.exists()
    assert stored_files(data_dir) == []


def test_a_real_zipped_csv_is_refused(as_ingester: APIClient) -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sales.csv", sales_csv([sales_row(1)]))

    response = multipart(as_ingester, buffer.getvalue(), name="sales.zip", content_type="application/zip")

    assert response.status_code in (415, 422)
    assert not RawFile.objects.exists()
