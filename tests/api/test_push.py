"""``/api/v1/datasets/{slug}/ingest/``: pushed rows go through the same pipeline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from ingestion.models import RawFile
from processing.models import RejectedRow, Run
from tests.api.conftest import API, error_of
from tests.conftest import SmallDisk, run_queued_tasks
from tests.records import records_total, stored_record, stored_record_keys

INGEST = f"{API}/datasets/sales/ingest/"


def row(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "id": f"J{n}",
        "timestamp": "2024-05-06T07:08:09Z",
        "category": "books",
        "value": 9.99,
        "quantity": n,
        "customer_email": f"j{n}@example.com",
        "country": "nl",
        "is_active": False,
        **changes,
    }


@pytest.mark.django_db
def test_a_small_json_batch_is_processed_now_with_a_result_per_row(as_ingester: APIClient) -> None:
    rows = [row(1), row(2, quantity=-1), row(3)]

    response = as_ingester.post(INGEST, rows, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["rows"] == 3 and body["run"]["status"] == "partially_succeeded"
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    assert "quantity" in body["results"][1]["errors"]
    assert set(stored_record_keys()) == {"J1", "J3"}
    assert RejectedRow.objects.get().raw["quantity"] == "-1"
    assert RawFile.objects.get().format == "ndjson"


@pytest.mark.django_db
@pytest.mark.parametrize("media_type", ["application/x-ndjson", "application/ndjson", "application/jsonl"])
def test_ndjson_keeps_a_malformed_line_as_a_rejected_row(as_ingester: APIClient, media_type: str) -> None:
    body = "\n".join([json.dumps(row(1)), '{"id": "J2", broken', "[1, 2]", json.dumps(row(4))]) + "\n"

    response = as_ingester.post(INGEST, body, content_type=media_type)

    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "accepted"]
    assert "not valid JSON" in results[1]["errors"]["__row__"][0]
    assert "must be a JSON object" in results[2]["errors"]["__row__"][0]


@pytest.mark.django_db
def test_pushing_the_same_rows_again_leaves_them_unchanged(as_ingester: APIClient) -> None:
    as_ingester.post(INGEST, [row(1), row(2)], format="json")

    again = as_ingester.post(INGEST, [row(1), row(2, quantity=7)], format="json").json()

    assert (again["run"]["rows_unchanged"], again["run"]["rows_updated"]) == (1, 1)
    assert records_total() == 2


@pytest.mark.django_db
def test_a_large_batch_becomes_a_queued_run(
    as_ingester: APIClient, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PUSH_SYNC_MAX_ROWS = 2
    with django_capture_on_commit_callbacks(execute=True):
        response = as_ingester.post(INGEST, [row(n) for n in range(1, 6)], format="json")

    assert response.status_code == 202
    assert response["Location"] == response.json()["run"]["url"]
    run_queued_tasks()
    assert Run.objects.get().status == "succeeded" and records_total() == 5


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        ('{"id": 1}', "application/json", 400, "JSON array"),
        ("[1, 2", "application/json", 400, "not valid JSON"),
        ("[]", "application/json", 400, "no rows"),
        ("id,x\n1,2\n", "text/csv", 415, "Unsupported media type"),
    ],
)
def test_bad_bodies_get_clear_errors(
    as_ingester: APIClient, body: str, content_type: str, status: int, message: str
) -> None:
    response = as_ingester.post(INGEST, body, content_type=content_type)

    assert response.status_code == status
    assert message in json.dumps(error_of(response))
    assert Run.objects.count() == 0 and RawFile.objects.count() == 0


@pytest.mark.django_db
def test_a_body_over_the_limit_is_refused(as_ingester: APIClient, settings: Any) -> None:
    settings.PUSH_MAX_BYTES = 100
    response = as_ingester.post(INGEST, [row(n) for n in range(10)], format="json")

    assert response.status_code == 413
    assert Run.objects.count() == 0


@pytest.mark.django_db
def test_viewers_and_strangers_cannot_push(as_viewer: APIClient, as_stranger: APIClient) -> None:
    assert as_viewer.post(INGEST, [row(1)], format="json").status_code == 403
    assert as_stranger.post(INGEST, [row(1)], format="json").status_code == 404
    assert records_total() == 0


def _line(n: int, **raw: str) -> str:
    """An NDJSON line for row n with some values given as raw JSON text."""
    base = json.dumps({k: v for k, v in row(n).items() if k not in raw})[:-1]
    return base + "".join(f', "{k}": {v}' for k, v in raw.items()) + "}"


@pytest.mark.django_db
@pytest.mark.parametrize("media_type", ["application/json", "application/x-ndjson"])
def test_a_lone_surrogate_rejects_its_row_only(as_ingester: APIClient, media_type: str) -> None:
    lines = [_line(1), _line(2, description='"x\\ud800y"')]
    body = "[" + ",".join(lines) + "]" if media_type == "application/json" else "\n".join(lines) + "\n"

    response = as_ingester.post(INGEST, body, content_type=media_type)

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert "lone surrogate" in results[1]["errors"]["description"][0]
    assert RejectedRow.objects.get().raw["description"] == "x\\ud800y"


@pytest.mark.django_db
def test_a_byte_order_mark_before_ndjson_is_ignored(as_ingester: APIClient) -> None:
    body = ("\ufeff" + json.dumps(row(1)) + "\n" + json.dumps(row(2)) + "\n").encode("utf-8")

    response = as_ingester.post(INGEST, body, content_type="application/x-ndjson")

    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]


@pytest.mark.django_db
def test_keys_differing_in_case_are_one_column_and_a_record_with_both_is_rejected_alone(
    as_ingester: APIClient,
) -> None:
    rows = [
        row(1),
        {**{k: v for k, v in row(2).items() if k != "country"}, "Country": "de"},
        {**row(3), "Country": "x"},
    ]

    response = as_ingester.post(INGEST, rows, format="json")

    body = response.json()
    assert body["run"]["status"] == "partially_succeeded", body["run"]["error"]
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "rejected"]
    assert "name the same column" in body["results"][2]["errors"]["__row__"][0]
    assert stored_record(key="J2").data["country"] == "DE"


@pytest.mark.django_db
def test_numbers_reach_the_validator_as_they_were_written(as_ingester: APIClient) -> None:
    lines = [_line(1, value="0.00000001"), _line(2, value="1234567890123456789.25"), _line(3, value="NaN")]

    response = as_ingester.post(INGEST, "\n".join(lines) + "\n", content_type="application/x-ndjson")

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted", "rejected"]
    assert "NaN is not a JSON value" in results[2]["errors"]["__row__"][0]
    page = as_ingester.get(f"{API}/datasets/sales/records/").content.decode()
    assert "1234567890123456789.25" in page and "0.00000001" in page


@pytest.mark.django_db
def test_a_json_array_keeps_number_spellings_in_the_stored_file(as_ingester: APIClient) -> None:
    body = "[" + _line(1, value="0.00000001") + "]"

    as_ingester.post(INGEST, body, content_type="application/json")

    raw_file = RawFile.objects.get()
    from ingestion.storage import data_storage

    with data_storage().open(raw_file.storage_name, "rb") as fh:
        assert b'"value":0.00000001' in fh.read()


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson", "application/jsonl", ""])
def test_an_empty_body_is_a_400_naming_what_to_send(as_ingester: APIClient, content_type: str) -> None:
    response = as_ingester.generic("POST", INGEST, b"", content_type=content_type)

    assert response.status_code == 400, response.content
    assert "body is empty" in error_of(response)["message"]
    assert Run.objects.count() == 0 and RawFile.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_a_chunked_body_the_server_did_not_decode_is_a_400_not_a_crash(
    as_ingester: APIClient, content_type: str
) -> None:
    """A server that passes no Content-Length and no decoded body (the test client here) leaves DRF an empty body."""
    body = json.dumps([row(1)]).encode()

    response = as_ingester.generic(
        "POST", INGEST, body, content_type=content_type, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked"
    )

    assert response.status_code == 400, response.content
    assert "body is empty" in error_of(response)["message"]
    assert Run.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("length", ["-5", "abc"])
def test_a_nonsense_content_length_is_a_400(as_ingester: APIClient, length: str) -> None:
    body = json.dumps([row(1)]).encode()

    response = as_ingester.generic("POST", INGEST, body, content_type="application/json", CONTENT_LENGTH=length)

    assert response.status_code == 400, response.content
    assert "Content-Length" in error_of(response)["message"]
    assert Run.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("media_type", ["application/json", "application/x-ndjson"])
def test_a_push_to_a_full_disk_is_a_507_and_keeps_nothing(
    as_ingester: APIClient, small_disk: SmallDisk, media_type: str
) -> None:
    rows = [row(n, description="d" * 60) for n in range(8000)]
    body = json.dumps(rows) if media_type == "application/json" else "".join(json.dumps(r) + "\n" for r in rows)
    assert len(body) > 1024 * 1024

    response = as_ingester.post(INGEST, body, content_type=media_type)

    assert response.status_code == 507, response.content
    assert error_of(response)["code"] == "insufficient_storage"
    assert Run.objects.count() == 0 and RawFile.objects.count() == 0
    assert small_disk.files() == []


@pytest.mark.django_db
def test_a_push_to_a_read_only_disk_is_a_503(as_ingester: APIClient, small_disk: SmallDisk) -> None:
    small_disk.make_read_only()

    response = as_ingester.post(INGEST, [row(1)], format="json")

    assert response.status_code == 503, response.content
    assert error_of(response)["code"] == "storage_unavailable"
    assert Run.objects.count() == 0 and RawFile.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("media_type", ["application/x-ndjson", "application/jsonl"])
def test_it_refuses_an_ndjson_push_that_is_not_utf_8_before_any_run(as_ingester: APIClient, media_type: str) -> None:
    body = (json.dumps(row(1), ensure_ascii=False).replace("books", "b\u00fccher") + "\n").encode("latin-1")

    response = as_ingester.generic("POST", INGEST, body, content_type=media_type)

    assert response.status_code == 400, response.content
    assert "must be UTF-8" in error_of(response)["message"]
    assert Run.objects.count() == 0 and RawFile.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("charset", ["latin-1", "utf-16", "cp1252"])
def test_it_refuses_an_ndjson_push_that_declares_another_charset(as_ingester: APIClient, charset: str) -> None:
    body = (json.dumps(row(1)) + "\n").encode(charset)

    response = as_ingester.generic("POST", INGEST, body, content_type=f"application/x-ndjson; charset={charset}")

    assert response.status_code == 415, response.content
    assert Run.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("encoded_as", "declared"), [("utf-32-be", "utf-16"), ("utf-16-le", "utf-8"), ("latin-1", "utf-8")]
)
def test_it_refuses_a_json_push_that_does_not_decode_as_its_declared_charset(
    as_ingester: APIClient, encoded_as: str, declared: str
) -> None:
    body = json.dumps([row(1, category="b\u00fccher")], ensure_ascii=False).encode(encoded_as)

    response = as_ingester.generic("POST", INGEST, body, content_type=f"application/json; charset={declared}")

    assert response.status_code == 400, response.content
    assert Run.objects.count() == 0 and RawFile.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("charset", ["utf-16", "utf-16-be", "utf-32-le", "utf-8"])
def test_a_json_push_is_read_in_its_declared_charset(as_ingester: APIClient, charset: str) -> None:
    body = json.dumps([row(1, description="gr\u00fc\u00dfe")], ensure_ascii=False).encode(charset)

    response = as_ingester.generic("POST", INGEST, body, content_type=f"application/json; charset={charset}")

    assert response.status_code == 200, response.content
    assert stored_record().data["description"] == "gr\u00fc\u00dfe"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"", b"id,value\n1,2\n"])
def test_a_csv_push_is_a_415_naming_the_accepted_media_types(as_ingester: APIClient, body: bytes) -> None:
    response = as_ingester.generic("POST", INGEST, body, content_type="text/csv")

    assert response.status_code == 415, response.content
    message = error_of(response)["message"]
    assert "application/json" in message and "application/x-ndjson" in message
    assert Run.objects.count() == 0
