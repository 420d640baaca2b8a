"""The data page end to end in headless Chromium: from the dashboard, filter, sort, page, facet, search,
export the view as CSV and open a record's lineage.

Needs Debian's ``chromium`` and the ``playwright`` Python package; runs on SQLite and on Postgres (the
records are loaded in the test's own process, no worker).
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER
from tests.e2e.conftest import log_in, needs_chromium, screenshot
from tests.factories import UserFactory

pytest.importorskip("playwright.sync_api")

pytestmark = [needs_chromium, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
PASSWORD = "a long browser test password"
ROWS = 900
COUNTRIES = ("FR", "DE", "US")


def row(i: int) -> dict[str, Any]:
    return {
        "id": f"R{i:04d}",
        "category": "books" if i % 2 else "toys",
        "value": Decimal((i * 37) % 400) + Decimal("0.25"),
        "country": COUNTRIES[i % 3],
        "description": "Blue widget" if i % 5 == 0 else "red gadget",
    }


def line(r: dict[str, Any], i: int) -> str:
    return (
        f"{r['id']},2024-01-02T03:04:05Z,{r['category']},{r['value']},1,u{i}@example.com,"
        f"{r['country']},{r['description']},yes"
    )


def values_shown(page: Any) -> list[Decimal]:
    """The value column of the table (the 5th cell: the record link, then id, timestamp, category, value)."""
    cells = page.locator("#data-table tbody tr td:nth-child(5)").all_inner_texts()
    return [Decimal(text.replace(",", "")) for text in cells]


def test_a_viewer_filters_sorts_pages_facets_searches_exports_and_opens_a_lineage(
    sales: Dataset, live_server: Any, browser_page: Any, tmp_path: Path
) -> None:
    rows = {i: row(i) for i in range(1, ROWS + 1)}
    path = tmp_path / "sales-march.csv"
    path.write_text("\n".join([SALES_HEADER, *(line(r, i) for i, r in rows.items())]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name="sales-march.csv")
    assert run.rows_inserted == ROWS
    viewer = UserFactory(username="vera", is_staff=True, password=PASSWORD)
    viewer.groups.add(Group.objects.get(name="Viewers"))
    DatasetGrant.objects.create(dataset=sales, user=viewer, role=DatasetRole.VIEWER)
    page = browser_page

    log_in(page, live_server.url, "vera", PASSWORD)
    page.click("a[href$='/admin/data/sales/']")
    page.wait_for_selector("#data-table")
    assert page.locator("#data-table tbody tr").count() == 100

    # Two filters with the form: country = FR, then value ≥ 100.
    page.select_option("#data-filter-form select[name=_ffield]", "country")
    page.select_option("#data-filter-form select[name=_fop]", label="=")
    page.fill("#data-filter-form input[name=_fvalue]", "FR")
    page.click("#data-filter-form button[type=submit]")
    page.wait_for_selector("#data-filters code:has-text('country=FR')")
    page.select_option("#data-filter-form select[name=_ffield]", "value")
    page.select_option("#data-filter-form select[name=_fop]", label="≥")
    page.fill("#data-filter-form input[name=_fvalue]", "100")
    page.click("#data-filter-form button[type=submit]")
    page.wait_for_selector("#data-filters code:has-text('value__gte=100')")
    assert page.locator("#data-filters code:has-text('country=FR')").count() == 1

    # Sort by value, largest first (a click sorts up, a second one down).
    page.click("#data-table thead a:text-is('value')")
    page.wait_for_url(re.compile(r"_sort=value"))
    page.click("#data-table thead a:text-is('value')")
    page.wait_for_url(re.compile(r"_sort=-value"))
    first_page = values_shown(page)
    assert len(first_page) == 100
    assert first_page == sorted(first_page, reverse=True) and min(first_page) >= 100
    screenshot(page, "data-page-filtered-sorted.png")

    # The next page carries on below the first one.
    page.click("#data-next")
    page.wait_for_url(re.compile(r"_next="))
    second_page = values_shown(page)
    expected_view = sorted(
        (r for r in rows.values() if r["country"] == "FR" and r["value"] >= 100),
        key=lambda r: (r["value"], r["id"]),
        reverse=True,
    )
    assert first_page + second_page == [r["value"] for r in expected_view][: len(first_page) + len(second_page)]
    page.click("#data-first")
    page.wait_for_selector("#data-facets")

    # A facet narrows the view to its value; the count shown is the number of records then listed.
    toys = page.locator("#data-facets [data-facet=category] li:has(a:text-is('toys'))")
    shown_count = int(re.sub(r"\D", "", toys.locator(".df-count").inner_text()))
    toys.locator("a").click()
    page.wait_for_selector("#data-filters code:has-text('category=toys')")
    assert shown_count == sum(1 for r in expected_view if r["category"] == "toys")
    assert page.locator("#data-table tbody tr").count() == min(shown_count, 100)

    # A search, ignoring case, on top of the filters.
    page.fill("#data-search input[name=_search]", "BLUE")
    page.click("#data-search button[type=submit]")
    page.wait_for_selector("#data-search-help:has-text('Records containing')")
    wanted = [r for r in expected_view if r["category"] == "toys" and "blue" in r["description"].lower()]
    assert 0 < len(wanted) < 100
    assert page.locator("#data-table tbody tr").count() == len(wanted)
    assert values_shown(page) == [r["value"] for r in wanted]
    screenshot(page, "data-page-faceted-searched.png")

    # Export this view as CSV: the file holds exactly the records of the view.
    with page.expect_download() as download_info:
        page.click("a.df-export:text-is('CSV')")
    download = download_info.value
    exported = tmp_path / "view.csv"
    download.save_as(str(exported))
    with exported.open(newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in wanted)
    assert all(r["country"] == "FR" and r["category"] == "toys" for r in records)
    assert all(Decimal(r["value"]) >= 100 and "blue" in r["description"].lower() for r in records)

    # A record's lineage: the run and the file it came from.
    first_id = page.locator("#data-table tbody tr:first-child td:nth-child(2)").inner_text()
    page.click("#data-table tbody tr:first-child a[title^='Record']")
    page.wait_for_selector("#record-lineage")
    lineage = page.inner_text("#record-lineage")
    assert f"#{run.pk}" in lineage and "sales-march.csv" in lineage
    assert first_id in page.content()
    screenshot(page, "data-page-record-lineage.png")


def test_a_superuser_finds_the_plumbing_under_system_and_a_datasets_runs_from_the_dashboard(
    sales: Dataset, live_server: Any, browser_page: Any, tmp_path: Path
) -> None:
    path = tmp_path / "sales-march.csv"
    path.write_text("\n".join([SALES_HEADER, *(line(row(i), i) for i in range(1, 1201))]) + "\n")
    runs = []
    for _ in range(2):  # the second is a no-op: the same file
        with path.open("rb") as fh:
            runs.append(file_ingest(dataset=sales, source=fh, original_name="sales-march.csv"))
    UserFactory(username="sam", is_staff=True, is_superuser=True, password=PASSWORD)
    page = browser_page

    log_in(page, live_server.url, "sam", PASSWORD)
    system = page.locator("#content-main .module:has(caption:has-text('System'))")
    assert system.locator("a:text-is('Access attempts (Axes)')").count() == 1
    assert page.locator("#content-main caption:text-is('Axes')").count() == 0
    assert page.locator("#content-main .module caption").last.inner_text().strip() == "SYSTEM"
    assert f"no-op: file loaded by run #{runs[0].pk}" in page.inner_text(".df-dashboard")
    screenshot(page, "dashboard-superuser.png")

    page.click("a.df-runs-link")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 2
    assert page.locator("#result_list td.field-file_name").all_inner_texts() == ["sales-march.csv"] * 2
    assert page.locator("#result_list td.field-read").all_inner_texts() == ["0", "1,200"]  # newest first: the no-op
    screenshot(page, "runs-list-by-dataset.png")
