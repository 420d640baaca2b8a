"""End to end in headless Chromium: upload, preview, confirm, watch the run, open a rejected row.

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``CHROMIUM_PATH``),
the ``playwright`` Python package (it drives the system browser; no browser
download) and Postgres, because a real worker (``qcluster``) processes the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from tests.cluster import Cluster, postgres_only
from tests.conftest import SALES_HEADER, sales_row
from tests.e2e.conftest import needs_chromium, screenshot
from tests.factories import UserFactory

pytest.importorskip("playwright.sync_api")

pytestmark = [
    postgres_only,
    needs_chromium,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "a long browser test password"


def test_an_operator_uploads_a_file_watches_the_run_and_opens_a_rejected_row(
    sales: Dataset, live_server: Any, browser_page: Any, worker: Cluster, tmp_path: Path
) -> None:
    operator = UserFactory(username="olivia", is_staff=True, password=PASSWORD)
    operator.groups.add(Group.objects.get(name="Operators"))
    DatasetGrant.objects.create(dataset=sales, user=operator, role=DatasetRole.INGESTER)
    csv_path = tmp_path / "march-sales.csv"
    rows = [sales_row(i) for i in range(1, 40)] + ["S99,2024-01-02,games,1,1,a@example.com,US,,yes"]
    csv_path.write_text("\n".join([SALES_HEADER, *rows]) + "\n")
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "olivia")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("text=Operations")

    page.click("text=Upload a CSV file")
    page.select_option("#id_dataset", label="sales")
    page.set_input_files("#id_file", str(csv_path))
    page.click("input[name=_preview]")

    page.wait_for_selector("#column-mapping")
    assert page.inner_text("#count-new") == "39"
    assert page.inner_text("#count-rejected") == "1"
    screenshot(page, "preview.png")
    page.click("#confirm")

    # The run page polls its progress view until the worker has finished.
    # (A selector, not a JS expression: the page's Content-Security-Policy forbids eval.)
    page.wait_for_selector("#run-status.df-partially_succeeded", timeout=60_000)
    assert page.inner_text("#run-status") == "Partially Succeeded"
    assert page.get_attribute("#run-progress", "value") in ("1", "1.0", "1.0000")
    assert page.inner_text("[data-counter=rows_inserted]") == "39"
    screenshot(page, "run.png")

    # The page reloads itself once the run has ended; wait for that version
    # (its links carry the final counts) before following a link.
    page.wait_for_selector("#run-rejected:has-text('Rejected rows (1')", timeout=30_000)
    page.click("#run-rejected")
    page.click("#result_list tbody tr th a")
    page.wait_for_selector("text=is not one of books, toys")
    assert "S99" in page.content()
    screenshot(page, "rejected-row.png")
