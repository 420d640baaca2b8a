"""Every API door that queues a run answers a broker outage with 503 and Retry-After, and keeps the run.

A real Redis broker, stopped for the request; the run stays ``queued`` with
its stored file and the reaper sends it once Redis is back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient

from ingestion.models import Dataset
from ingestion.storage import data_storage
from processing.models import Run, RunStatus
from processing.services.runs import SEND_GRACE, runs_reap
from tests.api.conftest import API, error_of, sales_csv
from tests.api.test_sources import TOKEN, sales_records, source_body
from tests.conftest import RedisServer, all_apps, sales_row, work_off_queue

pytestmark = pytest.mark.django_db(transaction=True, available_apps=all_apps())


@pytest.fixture
def crm_api(httpserver: HTTPServer) -> str:
    """A partner API with one page of seven records."""
    body = {"results": sales_records(7), "next": None}
    httpserver.expect_request("/records", headers={"Authorization": f"Bearer {TOKEN}"}).respond_with_json(body)
    return httpserver.url_for("/records")


def assert_queue_unavailable(response: Any) -> Run:
    """The one answer to a broker outage; returns the run it kept."""
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "60"
    error = error_of(response)
    assert error["code"] == "queue_unavailable"
    run_id = error["details"]["run_id"]
    assert error["details"] == {"retry_after_seconds": 60, "run_id": run_id, "run_status": "queued"}
    assert error["message"] == (
        f"The job queue is unavailable. Run {run_id} is kept queued and will be sent to a worker when the queue "
        "is back; there is no need to send it again."
    )  # and not where the broker is
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.enqueued_at) == (RunStatus.QUEUED, None)
    return run


def sent_once_the_broker_is_back(run: Run, redis: RedisServer) -> Run:
    redis.start()
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - SEND_GRACE - timedelta(seconds=1))
    assert runs_reap()["resent"] == 1
    work_off_queue()
    run.refresh_from_db()
    return run


def test_an_upload_during_an_outage_is_answered_503_and_its_file_is_kept(
    as_ingester: APIClient, redis_broker: RedisServer
) -> None:
    redis_broker.stop()
    upload = SimpleUploadedFile("sales.csv", sales_csv([sales_row(1), sales_row(2)]).encode(), content_type="text/csv")

    run = assert_queue_unavailable(
        as_ingester.post(f"{API}/datasets/sales/uploads/", {"file": upload}, format="multipart")
    )

    assert data_storage().exists(run.raw_file.storage_name)
    assert run.raw_file.original_name == "sales.csv"
    run = sent_once_the_broker_is_back(run, redis_broker)
    assert (run.status, run.rows_inserted) == (RunStatus.SUCCEEDED, 2)


def test_a_retry_during_an_outage_is_answered_503_and_the_new_run_is_kept(
    as_ingester: APIClient, sales: Dataset, ingest: Callable[..., Run], redis_broker: RedisServer
) -> None:
    failed = ingest(sales, "id,timestamp\nS1,2024-01-01\n")
    assert failed.status == RunStatus.FAILED
    redis_broker.stop()

    run = assert_queue_unavailable(as_ingester.post(f"{API}/runs/{failed.pk}/retry/"))

    assert (run.parent_id, run.raw_file_id) == (failed.pk, failed.raw_file_id)


def test_a_source_pull_during_an_outage_is_answered_503_and_the_run_is_kept(
    as_manager: APIClient, as_ingester: APIClient, crm_api: str, redis_broker: RedisServer
) -> None:
    source = as_manager.post(f"{API}/sources/", source_body(crm_api), format="json").json()
    redis_broker.stop()

    run = assert_queue_unavailable(as_ingester.post(source["pull_url"]))

    run = sent_once_the_broker_is_back(run, redis_broker)
    assert (run.status, run.rows_inserted) == (RunStatus.SUCCEEDED, 7)


def test_a_large_push_during_an_outage_is_answered_503_and_its_rows_are_kept(
    as_ingester: APIClient, settings: Any, redis_broker: RedisServer
) -> None:
    settings.PUSH_SYNC_MAX_ROWS = 1
    rows = [
        {
            "id": f"P{n}",
            "timestamp": "2024-05-06T07:08:09Z",
            "category": "books",
            "value": 1,
            "quantity": n,
            "customer_email": f"p{n}@example.com",
            "country": "nl",
            "is_active": True,
        }
        for n in range(1, 4)
    ]
    redis_broker.stop()

    run = assert_queue_unavailable(as_ingester.post(f"{API}/datasets/sales/ingest/", rows, format="json"))

    assert data_storage().exists(run.raw_file.storage_name)
    run = sent_once_the_broker_is_back(run, redis_broker)
    assert (run.status, run.rows_inserted) == (RunStatus.SUCCEEDED, 3)
