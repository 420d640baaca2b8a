"""The records list page is written directly (RecordPageWriter): it must say what RecordSerializer says."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection
from django.urls import set_script_prefix
from django.utils import timezone as django_timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from api.serializers.records import RecordPageWriter, RecordSerializer, record_url
from ingestion.models import Dataset
from ingestion.selectors import schema_spec
from processing.models import Run
from processing.record_queries import records_rows
from processing.record_tables import encode_data
from tests.records import records

from .conftest import API, sales_csv

pytestmark = pytest.mark.django_db
RECORDS = f"{API}/datasets/sales/records/"
AWKWARD_ROWS = [
    # key, description: quotes, backslashes, non-ASCII, the two JavaScript line separators, a newline
    '"a/b c?",2024-01-01,books,1,1,a@example.com,US,"He said ""hi"" \\ bye",yes',
    "ü/ß,2024-01-01T10:00:00.123456+02:00,toys,1234.50,7,b@example.com,FR,Größe 42 — 東京 🎁,no",
    "x\u2028y,2024-01-01,books,.5,0,c@example.com,DE,line\u2029sep,1",
    '"100%",2024-01-01,books,,3,d@example.com,US,"two\nlines",0',
    "a/./b,2024-01-01,books,2,2,e@example.com,US,,yes",
    "a/../b,2024-01-01,books,2,2,f@example.com,US,,yes",
]

# Whole seconds, a fraction, and another offset crossing midnight in UTC.
DRF_MOMENTS = [
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2024, 1, 2, 3, 4, 5, 120, tzinfo=UTC),
    datetime(2024, 7, 2, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]


def serializer_page(response: Any, dataset: Dataset) -> list[Any]:
    """What RecordSerializer renders for the records of a response, in its order."""
    request = response.wsgi_request
    stored = {r.key: r for r in records(dataset)}
    rows = [stored[item["key"]] for item in response.json()["results"]]
    data = RecordSerializer(rows, many=True, context={"request": request, "dataset": dataset}).data
    return json.loads(JSONRenderer().render(data))


def test_a_list_page_says_what_the_record_serializer_says(
    as_viewer: APIClient, sales: Dataset, ingest: Callable[..., Run]
) -> None:
    ingest(sales, sales_csv(AWKWARD_ROWS))

    response = as_viewer.get(RECORDS)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert len(body["results"]) == len(AWKWARD_ROWS)
    assert body["results"] == serializer_page(response, sales)
    # As JSONRenderer does, for JavaScript: the separators never travel raw.
    assert "\u2028" not in response.content.decode() and "\u2029" not in response.content.decode()


def test_every_page_of_a_walk_says_what_the_serializer_says(
    as_viewer: APIClient, sales: Dataset, ingest: Callable[..., Run]
) -> None:
    ingest(sales, sales_csv([f"S{n},2024-01-02,books,{n}.5,{n},u{n}@example.com,us,,yes" for n in range(7)]))
    response = as_viewer.get(RECORDS, {"page_size": 3, "ordering": "-value"})
    pages = 0
    while True:
        assert response.json()["results"] == serializer_page(response, sales)
        pages += 1
        if not response.json()["next"]:
            break
        response = as_viewer.get(response.json()["next"])
    assert pages == 3


@pytest.mark.parametrize(
    "key",
    ["S1", "a b", "x/y", "a/./b", "a/../b", "/lead", "..", ".", "%41", "ü/ß", "?q#f", "a//b", "-_~!$&'()*+,;=:@"],
)
def test_record_urls_are_the_ones_reverse_gives(key: str) -> None:
    request = Request(APIRequestFactory().get(RECORDS, HTTP_HOST="testserver"))

    assert RecordPageWriter(request, "sales").url(key) == record_url(request, "sales", key)


@pytest.mark.parametrize("moment", DRF_MOMENTS)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_times_are_written_as_drf_writes_them(moment: datetime, zone: str) -> None:
    request = Request(APIRequestFactory().get(RECORDS))
    with django_timezone.override(zone):
        assert RecordPageWriter(request, "sales").moment(moment) == serializers.DateTimeField().to_representation(
            moment
        )


def test_rows_carry_the_stored_json_text(sales: Dataset, ingest: Callable[..., Run]) -> None:
    ingest(sales, sales_csv(AWKWARD_ROWS[:2]))

    rows = list(records_rows(records(sales).order_by("key"), schema_spec(sales.current_schema)))

    stored = list(records(sales).order_by("key"))
    assert [json.loads(r.data_json) for r in rows] == [r.data for r in stored]
    assert [r.data for r in rows] == [r.data for r in stored]
    assert [(r.key, r.schema_number, r.source_line) for r in rows] == [(r.key, 1, r.source_line) for r in stored]


def test_the_json_text_of_rows_is_what_python_writes_for_the_stored_values(
    sales: Dataset, ingest: Callable[..., Run]
) -> None:
    """On Postgres the text is built in SQL: it must be byte for byte what encode_data writes."""
    controls = "".join(chr(c) for c in range(1, 32) if chr(c) not in "\n\r") + "\x7f\u00a0\ufeff"
    ingest(sales, sales_csv([*AWKWARD_ROWS, f'"ctl",2024-01-01,books,0.000,1,g@example.com,US,"{controls}",no']))
    spec = schema_spec(sales.current_schema)

    rows = list(records_rows(records(sales).order_by("key"), spec))

    names = [f.name for f in spec.fields]
    expected = [encode_data(spec, [r.data[n] for n in names]) for r in records(sales).order_by("key")]
    assert [r.data_json for r in rows] == expected
    assert json.loads(rows[[r.key for r in rows].index("ctl")].data_json)["description"] == controls


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),  # no fraction: DRF writes none
        datetime(2024, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
        datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-7))),  # next day in UTC
        datetime(1, 1, 1, 0, 0, tzinfo=UTC),
    ],
)
def test_page_rows_read_timestamps_exactly(sales: Dataset, ingest: Callable[..., Run], moment: datetime) -> None:
    ingest(sales, sales_csv(AWKWARD_ROWS[:1]))
    records(sales).update(created_at=moment, updated_at=moment + timedelta(microseconds=1))

    [row] = list(records_rows(records(sales), schema_spec(sales.current_schema)))

    record = records(sales).get()
    assert row.created_at == record.created_at and row.updated_at == record.updated_at
    assert row.data == record.data  # the typed values too: a date-time field is read as text
    assert row.created_at.utcoffset() == timedelta(0)


def test_page_rows_do_not_depend_on_the_sessions_date_style(sales: Dataset, ingest: Callable[..., Run]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("DateStyle and the session time zone are PostgreSQL's")
    ingest(sales, sales_csv(AWKWARD_ROWS[:1]))
    record = records(sales).get()
    rows = records_rows(records(sales), schema_spec(sales.current_schema))
    with connection.cursor() as cur:
        cur.execute("SET LOCAL DateStyle = 'German, DMY'")
        cur.execute("SET LOCAL TimeZone = 'Asia/Kathmandu'")
        [row] = list(rows)
        cur.execute("SET LOCAL TimeZone = 'UTC'")

    assert row.created_at == record.created_at and row.updated_at == record.updated_at
    assert row.data == record.data  # the typed values too: a date-time field is read as text


@pytest.mark.parametrize("moment", DRF_MOMENTS)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_timestamps_read_as_text_are_written_as_drf_writes_them(
    sales: Dataset, ingest: Callable[..., Run], moment: datetime, zone: str
) -> None:
    ingest(sales, sales_csv(AWKWARD_ROWS[:1]))
    records(sales).update(created_at=moment, updated_at=moment)
    [row] = list(records_rows(records(sales), schema_spec(sales.current_schema)))
    request = Request(APIRequestFactory().get(RECORDS))

    with django_timezone.override(zone):
        expected = serializers.DateTimeField().to_representation(moment)
        writer = RecordPageWriter(request, "sales")
        assert writer.moment_text(row.created_text) == expected
        assert json.loads(writer.record(row))["updated_at"] == expected


def test_record_urls_follow_each_request_s_script_prefix(as_viewer: APIClient, loaded: Run) -> None:
    """The reversed record URL is cached per script prefix: a page served under a prefix says so, the next not."""

    def first_url(prefix: str) -> str:
        # What a WSGI server's SCRIPT_NAME sets for the request (the test client does not).
        set_script_prefix(prefix)
        try:
            return str(as_viewer.get(RECORDS).json()["results"][0]["url"])
        finally:
            set_script_prefix("/")

    plain, prefixed, again = first_url("/"), first_url("/mounted/"), first_url("/")

    assert plain == "http://testserver/api/v1/datasets/sales/records/S1/"
    assert prefixed == "http://testserver/mounted/api/v1/datasets/sales/records/S1/"
    assert again == plain
