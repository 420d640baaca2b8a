"""Runs: list and filters, detail with progress, rejected rows, retry and cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from ingestion.models import Dataset
from processing.models import Run, RunStatus
from processing.services.runs import run_execute
from tests.conftest import sales_row

from .conftest import API, error_of, sales_csv

pytestmark = pytest.mark.django_db
RUNS = f"{API}/runs/"


@pytest.fixture
def failed(sales: Dataset, ingest: Callable[..., Run]) -> Run:
    run = ingest(sales, "id,timestamp\nS1,2024-01-01\n")
    assert run.status == RunStatus.FAILED
    return run


@pytest.fixture
def queued(as_ingester: APIClient) -> Run:
    upload = SimpleUploadedFile("q.csv", sales_csv([sales_row(1)]).encode(), content_type="text/csv")
    response = as_ingester.post(f"{API}/datasets/sales/uploads/", {"file": upload}, format="multipart")
    return Run.objects.get(pk=response.json()["id"])


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def test_the_list_shows_only_runs_of_visible_datasets_newest_first(
    as_viewer: APIClient, loaded: Run, failed: Run, other_run: Run
) -> None:
    assert ids(as_viewer.get(RUNS)) == [failed.pk, loaded.pk]


def test_runs_filter_by_dataset_and_status(as_viewer: APIClient, loaded: Run, failed: Run) -> None:
    assert ids(as_viewer.get(RUNS, {"dataset": "sales"})) == [failed.pk, loaded.pk]
    assert ids(as_viewer.get(RUNS, {"status": "failed"})) == [failed.pk]
    assert ids(as_viewer.get(RUNS, {"dataset": "sales", "status": "succeeded"})) == []


@pytest.mark.parametrize("slug", ["other", "nope", "x" * 300])
def test_filtering_by_a_dataset_without_a_grant_is_a_404(as_viewer: APIClient, other_run: Run, slug: str) -> None:
    response = as_viewer.get(RUNS, {"dataset": slug})

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "params", [{"status": "done"}, {"trigger": "cron"}, {"colour": "red"}, {"page_size": "5000"}, {"cursor": "x"}]
)
def test_bad_run_filters_are_a_400(as_viewer: APIClient, loaded: Run, params: dict[str, str]) -> None:
    assert as_viewer.get(RUNS, params).status_code == 400


def test_runs_are_paged_by_cursor(as_viewer: APIClient, loaded: Run, failed: Run) -> None:
    first = as_viewer.get(RUNS, {"page_size": 1}).json()
    second = as_viewer.get(first["next"]).json()

    assert [r["id"] for r in first["results"] + second["results"]] == [failed.pk, loaded.pk]


def test_a_run_shows_progress_counters_and_first_errors(as_viewer: APIClient, loaded: Run) -> None:
    body = as_viewer.get(f"{RUNS}{loaded.pk}/").json()

    assert (body["status"], body["finished"], body["progress"]) == ("partially_succeeded", True, 1.0)
    assert (body["rows_read"], body["rows_valid"], body["rows_rejected"], body["rows_inserted"]) == (13, 12, 1, 12)
    assert body["dataset"] == "sales"
    assert body["first_errors"] == [
        {"line": 14, "errors": {"timestamp": ["'not-a-date' is not an ISO 8601 date-time"]}}
    ]
    assert body["duration_seconds"] is not None
    assert body["file"]["sha256"] == loaded.raw_file.sha256


def test_rejected_rows_come_with_raw_values_and_reasons(as_viewer: APIClient, loaded: Run) -> None:
    body = as_viewer.get(f"{RUNS}{loaded.pk}/rejected-rows/").json()

    assert body["next"] is None
    (row,) = body["results"]
    assert row["line_number"] == 14
    assert row["raw"]["timestamp"] == "not-a-date"
    assert list(row["errors"]) == ["timestamp"]


@pytest.mark.parametrize("path", ["", "rejected-rows/"])
def test_a_stranger_gets_404_for_someone_else_s_run(as_stranger: APIClient, loaded: Run, path: str) -> None:
    response = as_stranger.get(f"{RUNS}{loaded.pk}/{path}")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_run_id_too_large_for_the_database_is_a_404(as_viewer: APIClient) -> None:
    assert as_viewer.get(f"{RUNS}{'9' * 40}/").status_code == 404


@pytest.mark.parametrize("persona", ["ingester", "manager"], indirect=True)
def test_ingesters_retry_a_failed_run(persona: APIClient, failed: Run) -> None:
    response = persona.post(f"{RUNS}{failed.pk}/retry/")

    assert response.status_code == 202
    body = response.json()
    assert (body["parent"], body["status"], body["trigger"]) == (failed.pk, "queued", "api")
    assert response["Location"] == body["url"]


def test_a_finished_run_that_succeeded_cannot_be_retried(as_ingester: APIClient, loaded: Run) -> None:
    response = as_ingester.post(f"{RUNS}{loaded.pk}/retry/")

    assert response.status_code == 409
    assert "failed or cancelled" in error_of(response)["message"]


def test_ingesters_cancel_a_queued_run(as_ingester: APIClient, queued: Run) -> None:
    response = as_ingester.post(f"{RUNS}{queued.pk}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert run_execute(run_id=queued.pk) is None


def test_a_finished_run_cannot_be_cancelled(as_ingester: APIClient, loaded: Run) -> None:
    assert as_ingester.post(f"{RUNS}{loaded.pk}/cancel/").status_code == 409


@pytest.mark.parametrize(("persona", "status"), [("viewer", 403), ("stranger", 404)], indirect=["persona"])
def test_viewers_and_strangers_cannot_retry_or_cancel(
    persona: APIClient, status: int, failed: Run, queued: Run
) -> None:
    assert persona.post(f"{RUNS}{failed.pk}/retry/").status_code == status
    assert persona.post(f"{RUNS}{queued.pk}/cancel/").status_code == status
    assert Run.objects.filter(parent=failed).count() == 0
    assert Run.objects.get(pk=queued.pk).status == RunStatus.QUEUED


def test_runs_cannot_be_changed_or_deleted_directly(as_manager: APIClient, loaded: Run) -> None:
    response = as_manager.delete(f"{RUNS}{loaded.pk}/")

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
