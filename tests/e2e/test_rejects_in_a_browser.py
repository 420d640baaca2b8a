"""The rejected-rows workbench end to end in headless Chromium: from a run's error groups to the rows,
an edit in the per-column form, a bulk change, re-validation and load, and a discard with a reason.

Needs Debian's ``chromium`` and the ``playwright`` Python package; runs on SQLite and on Postgres
(re-validating loads the rows in the web server's own process, no worker).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from processing.models import RejectedRow, Run
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, sales_row
from tests.e2e.conftest import log_in, needs_chromium, screenshot
from tests.factories import UserFactory
from tests.records import stored_record

pytest.importorskip("playwright.sync_api")

pytestmark = [needs_chromium, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
PASSWORD = "a long browser test password"
BAD_ROWS = [
    "G1,2024-01-02T03:04:05Z,games,1.50,1,g1@example.com,FR,,yes",
    "G2,2024-01-02T03:04:05Z,games,2.50,1,g2@example.com,FR,,yes",
    "G3,2024-01-02T03:04:05Z,games,3.50,1,g3@example.com,FR,,yes",
    "V1,2024-01-02T03:04:05Z,books,lots,1,v1@example.com,FR,,yes",
    "V2,2024-01-02T03:04:05Z,books,many,1,v2@example.com,FR,,yes",
    "E1,2024-01-02T03:04:05Z,books,4.50,1,not-an-email,FR,,yes",
]


def group_row(page: Any, field: str) -> Any:
    return page.locator(f"#reject-groups tbody tr:has(td:first-child:text-is('{field}'))")


def run_action(page: Any, action: str, **inputs: str) -> None:
    """Choose a bulk action for the ticked rows, fill its inputs and press Go."""
    page.select_option("select[name=action]", action)
    for name, value in inputs.items():
        page.fill(f"#changelist-form input[name={name}]", value)
    page.click("#changelist-form button[name=index]")


def test_an_operator_fixes_reloads_and_discards_rejected_rows_from_the_run_page(
    sales: Dataset, live_server: Any, browser_page: Any, tmp_path: Path
) -> None:
    path = tmp_path / "april.csv"
    path.write_text("\n".join([SALES_HEADER, *(sales_row(n) for n in range(1, 11)), *BAD_ROWS]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name="april.csv")
    assert (run.rows_inserted, run.rows_rejected) == (10, 6)
    operator = UserFactory(username="oscar", is_staff=True, password=PASSWORD)
    operator.groups.add(Group.objects.get(name="Operators"))
    DatasetGrant.objects.create(dataset=sales, user=operator, role=DatasetRole.INGESTER)
    run_url = f"{live_server.url}{reverse('admin:processing_run_change', args=[run.pk])}"
    page = browser_page

    log_in(page, live_server.url, "oscar", PASSWORD)
    page.click(f"a[href$='/admin/processing/run/{run.pk}/change/']")
    page.wait_for_selector("#reject-groups")
    assert group_row(page, "category").locator("td:nth-child(3)").inner_text() == "×3"
    assert group_row(page, "value").locator("td:nth-child(3)").inner_text() == "×2"
    assert group_row(page, "email").locator("td:nth-child(3)").inner_text() == "×1"
    screenshot(page, "rejects-run-page-before.png")

    # The category group lists its three rows, and only them.
    group_row(page, "category").locator("a").click()
    page.wait_for_selector("#result_list")
    assert all(part in page.url for part in ("error_field=category", "error_kind=", "run__id__exact="))
    assert page.locator("#result_list tbody tr").count() == 3
    list_url = page.url

    # One row fixed in its per-column form.
    page.click("#result_list tbody tr:has-text('G1') th a")
    page.wait_for_selector("form#rejectedrow_form")
    category = page.get_by_label(re.compile(r"^category:?$"))
    assert category.input_value() == "games"
    category.fill("toys")
    page.click("input[name=_save]")
    page.wait_for_selector("#result_list")
    assert RejectedRow.objects.get(run=run, raw__id="G1").raw["category"] == "toys"

    # The other two set at once: tick them, "Set a column to a value".
    for key in ("G2", "G3"):
        page.check(f"#result_list tbody tr:has-text('{key}') input.action-select")
    run_action(page, "set_value", column="category", value="books")
    page.wait_for_selector(".messagelist li.success:has-text('2 row(s) changed')")
    screenshot(page, "rejects-list-after-bulk-set.png")

    # All three validated again and loaded: a follow-up run of the first.
    page.check("#action-toggle")
    run_action(page, "revalidate_and_load")
    page.wait_for_selector(".messagelist li.success:has-text('loaded 3 of 3 rows')")
    follow_up = Run.objects.get(parent=run)
    assert (follow_up.rows_inserted, follow_up.rows_rejected) == (3, 0)
    for key, category in (("G1", "toys"), ("G2", "books"), ("G3", "books")):
        record = stored_record(key=key)
        assert getattr(record, record.field_attributes["category"]) == category
    page.goto(list_url)
    page.wait_for_selector("#changelist")
    assert page.locator("#result_list tbody tr").count() == 0

    # The bad e-mail is discarded, with the reason why.
    page.goto(run_url)
    group_row(page, "email").locator("a").click()
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1
    page.check("#result_list tbody tr:has-text('E1') input.action-select")
    run_action(page, "discard", reason="a test order, not a sale")
    page.wait_for_selector(".messagelist li.success:has-text('Discarded 1 row(s)')")
    discarded = RejectedRow.objects.get(run=run, raw__id="E1")
    assert discarded.discarded_at is not None and discarded.discard_reason == "a test order, not a sale"

    # The run page counts what happened: two rows left in quarantine, three fixed, one discarded.
    page.goto(run_url)
    page.wait_for_selector("#run-rejects")
    assert page.locator("#reject-groups tbody tr").count() == 1
    assert group_row(page, "value").locator("td:nth-child(3)").inner_text() == "×2"
    assert page.inner_text("#run-rejected") == "Rejected rows (6, 3 fixed since)"
    assert page.inner_text("#rejects-discarded") == "1 discarded row"
    assert page.locator(f"a[href$='/admin/processing/run/{follow_up.pk}/change/']").count() >= 1
    screenshot(page, "rejects-run-page-after.png")
