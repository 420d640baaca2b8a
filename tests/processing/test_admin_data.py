"""The console's data page (/admin/data/<slug>/): columns, sorting, filters, facets, search, paging, exports."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from ingestion.models import Dataset, DatasetRole
from processing.exports import EXPORT_FORMATS
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER
from tests.factories import UserFactory
from tests.processing.test_admin import client_for

pytestmark = pytest.mark.django_db

ROWS = [
    "S1,2024-01-02T03:04:05Z,books,1234.50,1,a@example.com,fr,,yes",
    "S2,2024-02-03T03:04:05Z,toys,10.50,2,b@example.com,de,Big Thing,no",
    "S3,2024-03-04T03:04:05Z,books,99999.00,3,c@example.com,fr,small thing,yes",
    "S4,2024-04-05T03:04:05Z,toys,5.00,4,d@example.com,us,other,yes",
]


@pytest.fixture
def loaded(sales: Dataset, csv_file: Callable[..., Path]) -> Dataset:
    with csv_file("\n".join([SALES_HEADER, *ROWS]) + "\n").open("rb") as fh:
        file_ingest(dataset=sales, source=fh, original_name="sales.csv")
    return sales


@pytest.fixture
def viewer(loaded: Dataset) -> Client:
    return client_for("Viewers", grants={loaded: DatasetRole.VIEWER})


@pytest.fixture
def api(loaded: Dataset) -> APIClient:
    client = APIClient()
    client.force_authenticate(UserFactory(is_superuser=True))
    return client


def page(client: Client, query: str = "") -> str:
    response = client.get(reverse("admin:processing_data", args=["sales"]) + query)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response.content.decode()


def keys(html: str) -> list[str]:
    """The record keys of the table's rows, in order (each row links to its record)."""
    return re.findall(r'title="Record ([^"]+) and its lineage"', html)


def test_the_page_shows_a_column_per_field_with_typed_values(viewer: Client) -> None:
    html = page(viewer)

    for name in ("id", "timestamp", "category", "value", "quantity", "email", "country", "description", "is_active"):
        assert f">{name}</a>" in html
    assert keys(html) == ["S1", "S2", "S3", "S4"]
    assert '<td class="df-num">99,999.00</td>' in html  # thousands separators, right-aligned
    assert '<td class="df-num">1,234.50</td>' in html
    assert '<td class="df-null">—</td>' in html  # S1 has no description
    assert '<td class="df-bool">false</td>' in html
    assert '<td class="df-time">2024-01-02T03:04:05' in html  # date-times are not wrapped
    assert "_first_run_id" not in html  # lineage hidden by default
    assert "_first_run_id" in page(viewer, "?_lineage=1")


def test_sorting_by_any_column_both_ways(viewer: Client) -> None:
    assert keys(page(viewer, "?_sort=-value")) == ["S3", "S1", "S2", "S4"]
    assert keys(page(viewer, "?_sort=value")) == ["S4", "S2", "S1", "S3"]
    assert keys(page(viewer, "?_sort=-_key")) == ["S4", "S3", "S2", "S1"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?country=FR", ["S1", "S3"]),
        ("?value__gte=100", ["S1", "S3"]),
        ("?quantity__lte=2", ["S1", "S2"]),
        ("?country__in=DE,US", ["S2", "S4"]),
        ("?description__contains=thing", ["S3"]),
        ("?description__isnull=true", ["S1"]),
        ("?description__isnull=false", ["S2", "S3", "S4"]),
        ("?is_active=false", ["S2"]),
        ("?country=FR&value__lte=2000", ["S1"]),
    ],
)
def test_each_filter_kind_matches_as_the_records_api_does(
    viewer: Client, api: APIClient, query: str, expected: list[str]
) -> None:
    html = page(viewer, query)
    assert keys(html) == expected
    assert 'id="data-filters"' in html
    response = api.get(f"/api/v1/datasets/sales/records/{query}")
    assert [r["key"] for r in response.json()["results"]] == expected


def test_the_filter_form_becomes_a_filter_of_the_url(viewer: Client) -> None:
    response = viewer.get(
        reverse("admin:processing_data", args=["sales"]), {"_ffield": "value", "_fop": "gte", "_fvalue": "100"}
    )
    assert response.status_code == 302
    assert response["Location"] == "?value__gte=100"


def test_an_active_filter_can_be_removed(viewer: Client) -> None:
    html = page(viewer, "?country=FR&quantity__gte=2")
    assert keys(html) == ["S3"]
    assert 'href="?quantity__gte=2"' in html  # removing country=FR keeps the other filter


@pytest.mark.parametrize(
    "query", ["?nosuchfield=1", "?value__gte=abc", "?is_active__gte=true", "?_sort=nope", "?_next=garbage"]
)
def test_a_bad_filter_is_a_message_on_the_page(viewer: Client, query: str) -> None:
    response = viewer.get(reverse("admin:processing_data", args=["sales"]) + query)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="data-errors"' in html
    assert keys(html) == []


def test_facets_count_the_filtered_view(viewer: Client) -> None:
    html = page(viewer)
    facets = set(re.findall(r'data-facet="([^"]+)"', html))
    assert {"category", "country", "is_active"} <= set(facets)
    assert "id" not in facets  # the key: one record per value, never a facet
    assert re.search(r'href="\?category=books">books</a> <span class="df-count">\(2\)</span>', html)
    filtered = page(viewer, "?country=FR")
    assert re.search(r'href="\?country=FR&amp;category=books">books</a> <span class="df-count">\(2\)</span>', filtered)
    assert ">toys</a>" not in filtered
    assert re.search(r'description__isnull=true">.*null.*</a> <span class="df-count">\(1\)</span>', html)


def test_facets_are_skipped_above_the_row_bound(viewer: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("processing.data_page.FACET_MAX_ROWS", 3)
    html = page(viewer)
    assert 'id="data-facets-skipped"' in html and "data-facet=" not in html
    assert "data-facet=" in page(viewer, "?country=FR")


def test_search_matches_text_fields_ignoring_case(viewer: Client) -> None:
    html = page(viewer, "?_search=THING")
    assert keys(html) == ["S2", "S3"]
    assert "in id, category, email, country, description, ignoring case" in html
    assert keys(page(viewer, "?_search=c%40example")) == ["S3"]


def test_keyset_pages_forward_and_back(viewer: Client) -> None:
    first = page(viewer, "?_size=3&_sort=-value")
    assert keys(first) == ["S3", "S1", "S2"]
    assert 'id="data-previous"' not in first
    next_url = re.search(r'href="([^"]+)" id="data-next"', first)
    assert next_url
    second = page(viewer, next_url.group(1).replace("&amp;", "&"))
    assert keys(second) == ["S4"]
    assert 'id="data-next"' not in second
    previous = re.search(r'href="([^"]+)" id="data-previous"', second)
    assert previous
    assert keys(page(viewer, previous.group(1).replace("&amp;", "&"))) == ["S3", "S1", "S2"]


def test_a_user_without_a_grant_gets_404(loaded: Dataset) -> None:
    stranger = client_for("Viewers")
    assert stranger.get(reverse("admin:processing_data", args=["sales"])).status_code == 404
    export = reverse("admin:processing_data_export", args=["sales", "csv"])
    assert stranger.get(export).status_code == 404
    assert client_for(superuser=True).get(reverse("admin:processing_data", args=["sales"])).status_code == 200


def _csv_ids(body: bytes) -> list[str]:
    return [row["id"] for row in csv.DictReader(io.StringIO(body.decode()))]


def test_the_export_links_export_only_the_filtered_rows(viewer: Client) -> None:
    html = page(viewer, "?country=FR&_sort=-value")
    links = dict(re.findall(r'<a href="([^"]+)" class="df-export">([^<]+)</a>', html))
    by_format = {label: url.replace("&amp;", "&") for url, label in links.items()}
    # One link per registered export format, each answering in its own media type.
    assert set(by_format) == {f.label for f in EXPORT_FORMATS.values()}
    for export in EXPORT_FORMATS.values():
        assert viewer.get(by_format[export.label])["Content-Type"] == export.content_type
    parquet = b"".join(viewer.get(by_format["Parquet"]).streaming_content)
    assert pq.read_table(io.BytesIO(parquet)).column("_key").to_pylist() == ["S1", "S3"]
    response = viewer.get(by_format["CSV"])
    assert response.status_code == 200
    assert _csv_ids(b"".join(response.streaming_content)) == ["S1", "S3"]
    body = b"".join(viewer.get(by_format["JSON"]).streaming_content)
    assert [r["id"] for r in json.loads(body)] == ["S1", "S3"]
    searched = viewer.get(reverse("admin:processing_data_export", args=["sales", "csv"]) + "?_search=other")
    assert _csv_ids(b"".join(searched.streaming_content)) == ["S4"]
    bad = viewer.get(reverse("admin:processing_data_export", args=["sales", "csv"]) + "?value__gte=x")
    assert bad.status_code == 400


def test_the_export_api_accepts_the_records_filters(api: APIClient) -> None:
    response = api.get("/api/v1/datasets/sales/export/?country=FR")
    assert response.status_code == 200
    assert _csv_ids(b"".join(response.streaming_content)) == ["S1", "S3"]
    parquet = api.get("/api/v1/datasets/sales/export/?format=parquet&value__lte=20")
    table = pq.read_table(io.BytesIO(b"".join(parquet.streaming_content)))
    assert sorted(table.column("_key").to_pylist()) == ["S2", "S4"]
    bad = api.get("/api/v1/datasets/sales/export/?nosuchfield=1")
    assert bad.status_code == 400
    assert "nosuchfield" in str(bad.json())


def test_the_dashboard_dataset_list_and_run_page_link_to_the_data_page(viewer: Client, loaded: Dataset) -> None:
    url = reverse("admin:processing_data", args=["sales"])
    admin = client_for(superuser=True)
    assert url in admin.get(reverse("admin:index")).content.decode()
    assert url in admin.get(reverse("admin:ingestion_dataset_changelist")).content.decode()
    run = loaded.runs.get()
    run_page = admin.get(reverse("admin:processing_run_change", args=[run.pk])).content.decode()
    assert f"{url}?_run={run.pk}" in run_page
    assert keys(page(viewer, f"?_run={run.pk}")) == ["S1", "S2", "S3", "S4"]


def test_a_records_page_shows_its_full_lineage(loaded: Dataset, viewer: Client, csv_file: Callable[..., Path]) -> None:
    changed = ROWS[0].replace("1234.50", "1300.00")
    with csv_file("\n".join([SALES_HEADER, ROWS[1], changed]) + "\n").open("rb") as fh:
        second = file_ingest(dataset=loaded, source=fh, original_name="april.csv")
    first = loaded.runs.exclude(pk=second.pk).get()

    html = page(viewer)
    record_url = reverse("admin:processing_record", args=["sales", "S1"])
    assert f'href="{record_url}"' in html
    record = viewer.get(record_url).content.decode()
    lineage = record[record.index('id="record-lineage"') :]
    assert "april.csv" in lineage and "line 3" in lineage  # last written: the second file, its third line
    assert "sales.csv" in lineage  # first loaded from the first file
    assert f"#{first.pk}" in lineage and f"#{second.pk}" in lineage
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+"
    assert re.search(rf"on {when}; last changed {when}\.</p>", lineage)  # one full stop, whatever the locale


def test_a_field_with_too_many_values_is_no_facet(viewer: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("processing.data_page.FACET_MAX_VALUES", 2)
    facets = set(re.findall(r'data-facet="([^"]+)"', page(viewer)))
    assert "category" in facets  # books, toys
    assert "country" not in facets  # FR, DE, US


@pytest.mark.parametrize(
    "sort", ["", "-_key", "value", "-value", "description", "-description", "is_active", "_updated_at"]
)
def test_walking_the_pages_one_record_at_a_time_gives_the_whole_view_in_order(viewer: Client, sort: str) -> None:
    whole = keys(page(viewer, f"?_sort={sort}"))
    assert sorted(whole) == ["S1", "S2", "S3", "S4"]
    seen: list[str] = []
    html = page(viewer, f"?_sort={sort}&_size=1")
    while True:
        seen += keys(html)
        found = re.search(r'href="([^"]+)" id="data-next"', html)
        if found is None:
            break
        html = page(viewer, found.group(1).replace("&amp;", "&"))
    assert seen == whole
    back: list[str] = []
    while True:
        back = keys(html) + back
        found = re.search(r'href="([^"]+)" id="data-previous"', html)
        if found is None:
            break
        html = page(viewer, found.group(1).replace("&amp;", "&"))
    assert back == whole


def test_a_bad_filter_is_listed_with_the_others_and_can_be_removed(viewer: Client) -> None:
    response = viewer.get(reverse("admin:processing_data", args=["sales"]) + "?country=FR&value__gte=lots")
    html = response.content.decode()
    assert response.status_code == 400
    assert "value__gte" in html[html.index('id="data-errors"') :]
    assert keys(page(viewer, re.findall(r'<code>value__gte=lots</code> <a href="([^"]+)"', html)[0])) == ["S1", "S3"]
