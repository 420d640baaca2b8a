"""End to end in headless Chromium: a new dataset from a sample file, its first run, then a schema edit.

New dataset from a file → change a proposed type → save → the upload preview → confirm and watch the
run → Edit schema, tightening a field → the preview lists the stored records that would fail → apply →
the new version's page with its diff. Needs what tests/e2e/test_console_in_a_browser.py needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from processing.models import Run, RunTrigger
from tests.cluster import Cluster, postgres_only
from tests.e2e.conftest import needs_chromium, screenshot
from tests.factories import UserFactory
from tests.records import records

pytest.importorskip("playwright.sync_api")

pytestmark = [
    postgres_only,
    needs_chromium,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "a long browser test password"


def row(page: Any, field: str) -> Any:
    """The form row that edits ``field``."""
    return page.locator("tr.df-schema-row", has=page.locator(f"input[name$='-name'][value='{field}']"))


def test_a_dataset_is_defined_from_a_sample_loaded_and_its_schema_tightened(
    live_server: Any, browser_page: Any, worker: Cluster, tmp_path: Path
) -> None:
    manager = UserFactory(username="maria", is_staff=True, password=PASSWORD)
    manager.groups.add(Group.objects.get(name="Operators"))
    for codename in ("add_dataset", "change_dataset"):
        manager.user_permissions.add(Permission.objects.get(content_type__app_label="ingestion", codename=codename))
    sample = tmp_path / "web-orders.csv"
    lines = ["order_id,code,placed,amount,country"]
    lines += [f"W{i},{1000 + i},2024-03-{i % 28 + 1:02d},{i}.50,US" for i in range(1, 31)]
    sample.write_text("\n".join(lines) + "\n")
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "maria")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("text=Operations")

    # New dataset from a file: the sample, then the proposed schema and the report behind it.
    page.goto(f"{live_server.url}/admin/ingestion/dataset/")
    page.click("#new-dataset-from-file")
    page.set_input_files("#id_file", str(sample))
    screenshot(page, "dataset-new-sample.png")
    page.click("#sample-read")
    page.wait_for_selector("#inference-report")
    assert "30 rows sampled" in page.inner_text("#inference-summary")
    assert page.input_value("#id_dataset-slug") == "web-orders"
    assert row(page, "code").locator("select[name$='-type']").input_value() == "integer"
    assert row(page, "order_id").locator("input[name$='-key']").is_checked()

    # Codes are labels, not numbers: make the column text, then save.
    row(page, "code").locator("select[name$='-type']").select_option("string")
    page.fill("#id_dataset-name", "Web orders")
    screenshot(page, "dataset-new-fields.png")
    page.click("#schema-save")

    # The same sample continues to the usual upload preview; confirm and watch the run.
    page.wait_for_selector("#column-mapping")
    assert page.inner_text("#count-new") == "30"
    dataset = Dataset.objects.get(slug="web-orders")
    assert DatasetGrant.objects.get(dataset=dataset, user=manager).role == DatasetRole.MANAGER
    assert {f["name"]: f["type"] for f in dataset.current_schema.definition["fields"]}["code"] == "string"
    screenshot(page, "dataset-upload-preview.png")
    page.click("#confirm")
    page.wait_for_selector("#run-status.df-succeeded", timeout=60_000)
    assert page.inner_text("[data-counter=rows_inserted]") == "30"
    screenshot(page, "dataset-first-run.png")

    # Edit schema: amounts of at least 10 only. The preview names the stored records that would fail.
    # (The run page reloads itself once the run has ended: wait for that version, or the reload aborts the
    # navigation.)
    page.wait_for_selector("#run-live[data-finished=true]", timeout=30_000)
    page.goto(f"{live_server.url}/admin/ingestion/dataset/{dataset.pk}/change/")
    page.click("#edit-schema")
    row(page, "amount").locator("textarea[name$='-constraints']").fill('{"min": 10}')
    page.click("#schema-preview-button")
    page.wait_for_selector("#schema-preview")
    assert page.get_attribute("#preview-counts", "data-checked") == "30"
    assert page.get_attribute("#preview-counts", "data-failing") == "9"
    assert "W1" in page.inner_text("#preview-failures")
    assert Dataset.objects.get(pk=dataset.pk).current_schema.number == 1
    screenshot(page, "dataset-edit-preview.png")

    # Apply: a new version, the failing records quarantined, and the version page with its diff.
    page.click("#schema-apply")
    page.wait_for_selector("#schema-diff")
    assert "9 stored record(s) no longer pass" in page.inner_text("ul.messagelist")
    assert "min" in page.inner_text("#schema-diff tr[data-field=amount]")
    assert "10" in page.inner_text("#schema-diff tr[data-field=amount] ins")
    screenshot(page, "dataset-version-diff.png")
    assert Dataset.objects.get(pk=dataset.pk).current_schema.number == 2
    assert Run.objects.get(dataset=dataset, trigger=RunTrigger.SCHEMA_CHANGE).rows_rejected == 9
    assert len(records(dataset)) == 21
