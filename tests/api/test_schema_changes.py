"""Changing a dataset's schema through the API: a preview first, then a report of what was quarantined."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework.test import APIClient

from ingestion.models import Dataset
from processing.models import RejectedRow, Run, RunTrigger
from tests.conftest import SALES_SCHEMA
from tests.records import records

from .conftest import error_of

API = "/api/v1"


def tightened() -> dict[str, Any]:
    """SALES_SCHEMA with quantity at most 2."""
    document = copy.deepcopy(SALES_SCHEMA)
    next(f for f in document["fields"] if f["name"] == "quantity")["max"] = 2
    return document


def test_a_dry_run_answers_what_would_be_quarantined_and_changes_nothing(
    as_manager: APIClient, sales: Dataset, loaded: Run
) -> None:
    before = records(sales).count()
    quantities = {r.key: r.data["quantity"] for r in records(sales)}
    over = sorted(k for k, q in quantities.items() if q > 2)

    response = as_manager.put(f"{API}/datasets/sales/?dry_run=true", tightened(), format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dry_run"] is True and body["records_checked"] == before
    assert body["records_failing"] == len(over) > 0
    assert [f["key"] for f in body["failures"]] == over
    assert body["failures"][0]["errors"] == {"quantity": ["must be at most 2"]}
    assert records(sales).count() == before
    assert Dataset.objects.get(pk=sales.pk).current_schema_id == sales.current_schema_id


def test_applying_reports_the_quarantine_run(as_manager: APIClient, sales: Dataset, loaded: Run) -> None:
    over = sorted(r.key for r in records(sales) if r.data["quantity"] > 2)

    response = as_manager.put(f"{API}/datasets/sales/", tightened(), format="json")

    assert response.status_code == 200, response.json()
    change = response.json()["schema_change"]
    assert change["records_quarantined"] == len(over)
    run = Run.objects.get(pk=change["run_id"])
    assert run.trigger == RunTrigger.SCHEMA_CHANGE
    assert sorted(r.raw["id"] for r in RejectedRow.objects.filter(run=run)) == over
    assert all(r.data["quantity"] <= 2 for r in records(sales))
    assert as_manager.get(f"{API}/runs/{run.pk}/").json()["rows_rejected"] == len(over)


def test_dry_run_takes_true_or_false_only(as_manager: APIClient, sales: Dataset) -> None:
    response = as_manager.put(f"{API}/datasets/sales/?dry_run=yes", tightened(), format="json")

    assert response.status_code == 400
    assert error_of(response)["details"] == {"dry_run": ["must be true or false"]}
