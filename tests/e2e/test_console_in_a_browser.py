"""End to end in headless Chromium: upload, preview, confirm, watch the run, open a rejected row.

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``CHROMIUM_PATH``),
the ``playwright`` Python package (it drives the system browser; no browser
download) and Postgres, because a real worker (``qcluster``) processes the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from tests.cluster import Cluster, postgres_only
from tests.conftest import SALES_HEADER, sales_row
from tests.e2e.conftest import needs_chromium
from tests.factories import UserFactory

pytest.importorskip("playwright.sync_api")

pytestmark = [
    postgres_only,
    needs_chromium,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "a long browser test password"


@pytest.fixture
def worker(data_dir: Path, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(data_dir, tmp_path / "qcluster.log").start()
    yield cluster
    cluster.stop()


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
    _screenshot(page, "preview.png")
    page.click("#confirm")

    # The run page polls its progress view until the worker has finished.
    # (A selector, not a JS expression: the page's Content-Security-Policy forbids eval.)
    page.wait_for_selector("#run-status.df-partially_succeeded", timeout=60_000)
    assert page.inner_text("#run-status") == "Partially Succeeded"
    assert page.get_attribute("#run-progress", "value") in ("1", "1.0", "1.0000")
    assert page.inner_text("[data-counter=rows_inserted]") == "39"
    _screenshot(page, "run.png")

    # The page reloads itself once the run has ended; wait for that version
    # (its links carry the final counts) before following a link.
    page.wait_for_selector("#run-rejected:has-text('Rejected rows (1')", timeout=30_000)
    page.click("#run-rejected")
    page.click("#result_list tbody tr th a")
    page.wait_for_selector("text=is not one of books, toys")
    assert "S99" in page.content()
    _screenshot(page, "rejected-row.png")


def _screenshot(page: Any, name: str) -> None:
    """Save a full-page screenshot into ``$E2E_SCREENSHOTS`` when it is set.

    Only on request: a screenshot proves nothing the assertions do not, and
    on a loaded machine Chromium can take longer than the page timeout to
    capture a page that polls and reloads itself.
    """
    folder = os.environ.get("E2E_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True, timeout=120_000)
