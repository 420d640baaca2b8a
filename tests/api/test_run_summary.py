"""One shape of a run: the API, ``run_status --json``, the console and the webhook show the same summary."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from api.serializers.runs import RunDetailSerializer, RunSerializer
from ingestion.models import Dataset, DatasetRole
from processing.models import Run, RunStatus
from processing.selectors import RUN_COUNTERS, run_summary
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, run_queued_tasks, sales_row
from tests.factories import UserFactory

from .conftest import API, bearer, grant

pytestmark = pytest.mark.django_db
LINKS = {"url", "rejected_rows_url"}  # the API's own: they need the request's host


@pytest.fixture
def notified_run(
    sales: Dataset,
    csv_file: Callable[..., Path],
    httpserver: HTTPServer,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> tuple[Run, dict[str, Any]]:
    """A run with a rejected row, and the webhook document its notification posted."""
    received: list[dict[str, Any]] = []

    def handle(request: Request) -> Response:
        received.append(json.loads(request.data))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handle)
    settings.NOTIFY_EMAILS = ["ops@example.com"]
    sales.notify_webhooks = [httpserver.url_for("/hook")]
    sales.notify_on_success = True
    sales.save()
    path = csv_file("\n".join([SALES_HEADER, sales_row(1), "S2,bad,books,1,1,a@example.com,US,,yes"]) + "\n")
    with django_capture_on_commit_callbacks(execute=True), path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name="sales.csv")
    assert run.status == RunStatus.PARTIALLY_SUCCEEDED
    assert {"sent": 2, "failed": 0} in run_queued_tasks()
    (payload,) = received
    return run, payload


def test_the_api_the_command_and_the_webhook_show_one_summary(notified_run: tuple[Run, dict[str, Any]]) -> None:
    run, webhook = notified_run
    viewer = UserFactory()
    grant(run.dataset, viewer, DatasetRole.VIEWER)
    api = bearer(viewer).get(f"{API}/runs/{run.pk}/").json()
    out = io.StringIO()
    call_command("run_status", str(run.pk), "--json", stdout=out)
    command = json.loads(out.getvalue())

    assert webhook["event"] == "run.succeeded"
    assert command == webhook["run"]
    assert {k: v for k, v in api.items() if k not in LINKS} == command
    assert set(api) == set(command) | LINKS
    # The names are the API's: counters are rows_*, the run is "id", the file an object.
    assert {k: command[k] for k in RUN_COUNTERS} == {
        "rows_read": 2,
        "rows_valid": 1,
        "rows_rejected": 1,
        "rows_inserted": 1,
        "rows_updated": 0,
        "rows_unchanged": 0,
    }
    assert (command["id"], command["dataset"], command["file"]["name"]) == (run.pk, "sales", "sales.csv")
    assert command["first_errors"] == [{"line": 3, "errors": {"timestamp": ["'bad' is not an ISO 8601 date-time"]}}]
    # The email says the same things, one line each.
    body = mail.outbox[-1].body
    assert "rows_valid: 1\n" in body and "rows_rejected: 1\n" in body and "file: sales.csv\n" in body


def test_the_console_progress_json_is_the_summary_without_its_details(
    notified_run: tuple[Run, dict[str, Any]],
) -> None:
    run, webhook = notified_run
    user = UserFactory(is_staff=True, is_superuser=True)
    console = Client()
    console.force_login(user)

    progress = console.get(reverse("admin:processing_run_progress", args=[run.pk])).json()
    page = console.get(reverse("admin:processing_run_change", args=[run.pk])).content.decode()

    assert progress.pop("status_display") == "Partially Succeeded"
    assert progress == {
        k: v
        for k, v in webhook["run"].items()
        if k not in ("summary", "duration_seconds", "first_errors", "checks", "anomalies")
    }
    for name in RUN_COUNTERS:
        assert f'data-counter="{name}">{webhook["run"][name]}</strong>' in page


def test_the_api_serializers_declare_exactly_the_summary(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    """The OpenAPI document is built from the declared fields: they must be the summary's keys."""
    path = csv_file("\n".join([SALES_HEADER, sales_row(1)]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh)

    assert set(RunSerializer().fields) == set(run_summary(run, detail=False)) | LINKS
    assert set(RunDetailSerializer().fields) == set(run_summary(run)) | LINKS
