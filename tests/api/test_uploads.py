"""Uploads: multipart or text/csv in, a queued run (202) or a dry-run preview out; limits and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from ingestion.models import Dataset, RawFile
from processing.models import Run, RunStatus
from processing.services.runs import run_execute
from tests.conftest import SmallDisk, sales_row
from tests.records import records, records_total

from .conftest import API, error_of, sales_csv

pytestmark = pytest.mark.django_db
UPLOADS = f"{API}/datasets/sales/uploads/"
GOOD = sales_csv([sales_row(1), sales_row(2), "BAD,not-a-date,books,1,1,x@example.com,US,,yes"])


def multipart(
    client: APIClient, content: bytes | str, *, name: str = "sales.csv", content_type: str = "text/csv", **params: Any
) -> Any:
    data = content.encode() if isinstance(content, str) else content
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(f"{UPLOADS}?{query}" if query else UPLOADS, {"file": upload}, format="multipart")


def stored_files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file()]


@pytest.mark.parametrize("persona", ["ingester", "manager"], indirect=True)
def test_an_upload_queues_a_run_that_can_be_followed_to_its_end(persona: APIClient) -> None:
    response = multipart(persona, GOOD)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == RunStatus.QUEUED
    assert body["finished"] is False
    assert response["Location"] == body["url"]
    assert body["file"]["name"] == "sales.csv"
    run_execute(run_id=body["id"])  # what the worker does
    polled = persona.get(response["Location"]).json()
    assert (polled["status"], polled["finished"], polled["progress"]) == ("partially_succeeded", True, 1.0)
    assert (polled["rows_read"], polled["rows_inserted"], polled["rows_rejected"]) == (3, 2, 1)
    assert polled["first_errors"][0]["line"] == 4
    assert polled["trigger"] == "api"


def test_a_text_csv_body_is_an_upload_too(as_ingester: APIClient) -> None:
    response = as_ingester.post(
        UPLOADS, data=GOOD.encode(), content_type="text/csv", HTTP_CONTENT_DISPOSITION='attachment; filename="day.csv"'
    )

    assert response.status_code == 202
    assert response.json()["file"]["name"] == "day.csv"
    run_execute(run_id=response.json()["id"])
    assert records(Dataset.objects.get(slug="sales")).count() == 2


def test_a_dry_run_previews_and_keeps_nothing(as_ingester: APIClient, data_dir: Path) -> None:
    response = multipart(as_ingester, GOOD, dry_run="true")

    assert response.status_code == 200
    body = response.json()
    assert (body["rows_read"], body["valid"], body["rejected"], body["inserted"]) == (3, 2, 1, 2)
    assert body["rejected_rows"][0]["line"] == 4
    assert not Run.objects.exists()
    assert not RawFile.objects.exists()
    assert not (records_total() > 0)
    assert stored_files(data_dir) == []


@pytest.mark.parametrize(("persona", "status"), [("viewer", 403), ("stranger", 404)], indirect=["persona"])
def test_viewers_and_strangers_cannot_upload(persona: APIClient, status: int, data_dir: Path) -> None:
    assert multipart(persona, GOOD).status_code == status
    assert multipart(persona, GOOD, dry_run="true").status_code == status
    assert not RawFile.objects.exists()
    assert stored_files(data_dir) == []


def test_a_file_over_the_size_limit_is_a_413_and_is_not_kept(
    as_ingester: APIClient, settings: Any, data_dir: Path
) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_UPLOAD_SIZE": 100}

    multipart_response = multipart(as_ingester, GOOD)
    body_response = as_ingester.post(UPLOADS, data=GOOD.encode(), content_type="text/csv")

    for response in (multipart_response, body_response):
        assert response.status_code == 413
        assert error_of(response)["code"] == "too_large"
    assert not RawFile.objects.exists()
    assert stored_files(data_dir) == []


def test_a_body_announced_too_large_is_refused_before_it_is_read(as_ingester: APIClient, settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_UPLOAD_SIZE": 10}

    response = as_ingester.post(UPLOADS, data=b"x" * 70_000, content_type="text/csv")

    assert response.status_code == 413


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": b'{"rows": []}', "content_type": "application/json"}, 415),
        ({"data": b"id=1", "content_type": "application/x-www-form-urlencoded"}, 415),
        ({"data": b"", "content_type": "text/csv"}, 400),
    ],
)
def test_a_body_that_is_not_csv_is_refused(as_ingester: APIClient, kwargs: dict[str, Any], status: int) -> None:
    response = as_ingester.post(UPLOADS, **kwargs)

    assert response.status_code == status
    assert not RawFile.objects.exists()


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png", 415),
        (b"%PDF-1.7 ...", "application/pdf", 415),
        (b"PK\x03\x04 an xlsx workbook", "application/octet-stream", 422),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 an xls", "application/vnd.ms-excel", 422),
        (b"\x1f\x8b\x08 gzip", "text/csv", 422),
        (b"", "text/csv", 400),
    ],
)
def test_a_file_that_is_not_csv_is_refused(
    as_ingester: APIClient, content: bytes, content_type: str, status: int, data_dir: Path
) -> None:
    response = multipart(as_ingester, content, content_type=content_type)

    assert response.status_code == status, response.content
    error_of(response)
    assert not RawFile.objects.exists()
    assert stored_files(data_dir) == []


def test_a_multipart_body_without_a_file_field_is_a_400(as_ingester: APIClient) -> None:
    response = as_ingester.post(UPLOADS, {"data": "x"}, format="multipart")

    assert response.status_code == 400
    assert "file" in error_of(response)["details"]


@pytest.mark.parametrize(
    "params",
    [
        {"dry_run": "maybe"},
        {"delimiter": "ab"},
        {"encoding": "klingon"},
        {"encoding": "rot13"},
        {"encoding": "base64"},
        {"encoding": "punycode"},
        {"encoding": "undefined"},
        {"encoding": "charmap"},
        {"encoding": "utf-7"},
        {"force": "2"},
        {"sheet": "1"},
    ],
)
def test_bad_upload_options_are_a_400(as_ingester: APIClient, params: dict[str, str]) -> None:
    response = multipart(as_ingester, GOOD, **params)

    assert response.status_code == 400
    assert not Run.objects.exists()


def test_options_reach_the_pipeline(as_ingester: APIClient) -> None:
    text = GOOD.replace(",", ";").encode("cp1252")

    response = multipart(as_ingester, text, delimiter=";", encoding="cp1252")

    raw = RawFile.objects.get()
    assert response.status_code == 202
    assert (raw.delimiter, raw.encoding) == (";", "cp1252")


def test_a_dry_run_of_a_file_that_does_not_fit_its_encoding_is_a_422(as_ingester: APIClient) -> None:
    text = GOOD.encode("utf-16-le")  # no byte-order mark, which "utf-16" requires

    preview = multipart(as_ingester, text, encoding="utf-16", dry_run="true")

    assert preview.status_code == 422
    assert "BOM" in error_of(preview)["message"]


def test_the_same_file_twice_is_a_noop_run_unless_forced(as_ingester: APIClient, sales: Dataset) -> None:
    first = multipart(as_ingester, GOOD).json()
    run_execute(run_id=first["id"])
    again = multipart(as_ingester, GOOD).json()
    run_execute(run_id=again["id"])
    forced = multipart(as_ingester, GOOD, force="true").json()
    run_execute(run_id=forced["id"])

    assert as_ingester.get(again["url"]).json()["noop_of"] == first["id"]
    assert as_ingester.get(forced["url"]).json()["noop_of"] is None


def test_uploads_are_throttled_per_user(as_ingester: APIClient, settings: Any) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "uploads": "1/hour"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    assert multipart(as_ingester, GOOD).status_code == 202
    assert multipart(as_ingester, GOOD).status_code == 429


def big_csv(rows: int = 12_000) -> bytes:
    """About 1.5 MB of valid rows: more than the 1 MB disk holds."""
    return (sales_csv([sales_row(n, description="d" * 40) for n in range(rows)])).encode()


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_upload_to_a_full_disk_is_a_507_and_keeps_nothing(
    as_ingester: APIClient, small_disk: SmallDisk, dry_run: bool
) -> None:
    data = big_csv()
    assert len(data) > 1024 * 1024
    path = f"{UPLOADS}?dry_run=true" if dry_run else UPLOADS

    response = as_ingester.post(path, data=data, content_type="text/csv")

    assert response.status_code == 507, response.content
    error = error_of(response)
    assert error["code"] == "insufficient_storage"
    assert "no space left" in error["message"]
    assert RawFile.objects.count() == 0 and Run.objects.count() == 0
    assert small_disk.files() == []


def test_a_multipart_upload_to_a_full_disk_is_a_507(as_ingester: APIClient, small_disk: SmallDisk) -> None:
    response = multipart(as_ingester, big_csv())

    assert response.status_code == 507, response.content
    assert RawFile.objects.count() == 0 and Run.objects.count() == 0
    assert small_disk.files() == []


def test_an_upload_to_a_read_only_disk_is_a_503_and_keeps_nothing(
    as_ingester: APIClient, small_disk: SmallDisk
) -> None:
    small_disk.make_read_only()

    response = as_ingester.post(UPLOADS, data=sales_csv([sales_row(1)]).encode(), content_type="text/csv")

    assert response.status_code == 503, response.content
    error = error_of(response)
    assert error["code"] == "storage_unavailable"
    assert "read-only" in error["message"]
    assert RawFile.objects.count() == 0 and Run.objects.count() == 0


def test_an_upload_fits_again_once_there_is_room(as_ingester: APIClient, small_disk: SmallDisk) -> None:
    assert as_ingester.post(UPLOADS, data=big_csv(), content_type="text/csv").status_code == 507

    response = as_ingester.post(UPLOADS, data=sales_csv([sales_row(1)]).encode(), content_type="text/csv")

    assert response.status_code == 202
    assert RawFile.objects.count() == 1 and Run.objects.count() == 1
