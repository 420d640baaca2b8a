"""Run notifications: webhooks (a real HTTP server on 127.0.0.1) and email."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingestion.models import Dataset
from processing.checks import notify_webhooks_allowed
from processing.models import RunStatus
from processing.notifications import run_notify, run_notify_event
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, run_queued_tasks, sales_row


@pytest.fixture
def hook(httpserver: HTTPServer) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []

    def handle(request: Request) -> Response:
        received.append(json.loads(request.data))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handle)
    return received


@pytest.mark.django_db
def test_a_failed_run_posts_to_the_webhooks_and_emails_the_recipients(
    sales: Dataset,
    csv_file: Callable[..., Path],
    httpserver: HTTPServer,
    hook: list[dict[str, Any]],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.NOTIFY_EMAILS = ["ops@example.com"]
    sales.notify_webhooks = [httpserver.url_for("/hook")]
    sales.save()

    path = csv_file("nope,header\n1,2\n")
    with django_capture_on_commit_callbacks(execute=True), path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name="bad.csv")
    assert run.status == RunStatus.FAILED
    results = run_queued_tasks()

    assert {"sent": 2, "failed": 0} in results
    assert hook[-1]["event"] == "run.failed" and hook[-1]["run"]["id"] == run.pk
    assert "missing required column" in hook[-1]["run"]["error"]
    assert mail.outbox[-1].to == ["ops@example.com"] and f"run {run.pk}" in mail.outbox[-1].subject


@pytest.mark.django_db
def test_successful_runs_notify_only_when_asked(sales: Dataset, csv_file: Callable[..., Path], settings: Any) -> None:
    settings.NOTIFY_EMAILS = ["ops@example.com"]
    path = csv_file("\n".join([SALES_HEADER, sales_row(1), "BAD,x,books,1,1,x@example.com,US,,yes"]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh)

    assert run_notify_event(run) is None
    run.dataset.notify_reject_rate = 0.4
    assert run_notify_event(run) == "run.rejects"  # 1 of 2 rows rejected
    run.dataset.notify_reject_rate = None
    run.dataset.notify_on_success = True
    assert run_notify_event(run) == "run.succeeded"


@pytest.mark.django_db
def test_a_failing_webhook_is_logged_and_never_fails_the_run(
    sales: Dataset, csv_file: Callable[..., Path], httpserver: HTTPServer, settings: Any, caplog: Any
) -> None:
    httpserver.expect_request("/broken").respond_with_data("no", status=500)
    settings.NOTIFY_WEBHOOKS = [httpserver.url_for("/broken"), "http://127.0.0.1:9/closed"]
    path = csv_file("nope\n1\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh)

    assert run_notify(run_id=run.pk, event="run.failed") == {"sent": 0, "failed": 2}
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "webhook" not in run.error
    assert "answered 500" in caplog.text


@pytest.mark.django_db
def test_webhooks_to_private_addresses_are_refused(sales: Dataset, settings: Any, httpserver: HTTPServer) -> None:
    from ingestion.services.datasets import notify_webhooks_clean

    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    with pytest.raises(
        Exception, match=re.escape("points at 10.1.2.3, a private address; webhooks may only reach public")
    ):
        notify_webhooks_clean(["http://10.1.2.3/hook"])


def test_it_refuses_more_webhooks_per_dataset_than_the_limit(dns_lookups: list[str]) -> None:
    from ingestion.services.datasets import MAX_DATASET_WEBHOOKS, notify_webhooks_clean

    # Literal public addresses: the accepted list below is checked without a DNS query.
    hooks = [f"https://8.8.4.{n}/run" for n in range(1, MAX_DATASET_WEBHOOKS + 2)]

    with pytest.raises(ValidationError) as excinfo:
        notify_webhooks_clean(hooks)

    assert excinfo.value.messages == [
        f"A dataset may have at most {MAX_DATASET_WEBHOOKS} webhooks; {MAX_DATASET_WEBHOOKS + 1} were given."
    ]
    assert notify_webhooks_clean(hooks[:MAX_DATASET_WEBHOOKS]) == hooks[:MAX_DATASET_WEBHOOKS]
    assert dns_lookups == []


@pytest.mark.parametrize(
    ("hook", "points_at"),
    [
        ("http://2130706433/hook", "points at 127.0.0.1, a loopback address"),
        ("http://127.1/hook", "points at 127.0.0.1, a loopback address"),
        ("http://0177.0.0.1/hook", "points at 127.0.0.1, a loopback address"),
        ("http://[::1]/hook", "points at ::1, a loopback address"),
        ("http://localhost./hook", "resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_installation_webhooks_pointing_inside_the_network_stop_start_up(
    settings: Any, hook: str, points_at: str
) -> None:
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    settings.NOTIFY_WEBHOOKS = ["https://8.8.8.8/ok", hook]

    errors = notify_webhooks_allowed()

    assert [e.id for e in errors] == ["dataflow.E002"]
    assert errors[0].msg == (
        f"NOTIFY_WEBHOOKS: {hook} {points_at}; webhooks may only reach public addresses "
        "unless SOURCE_ALLOWED_NETWORKS allows it"
    )


def test_installation_webhooks_pass_the_check_when_public_or_allowed(settings: Any) -> None:
    settings.NOTIFY_WEBHOOKS = ["https://8.8.8.8/hook", "http://0x7f.1/hook"]
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}

    assert notify_webhooks_allowed() == []


def test_the_start_up_check_makes_no_dns_query_for_installation_webhooks(settings: Any, dns_lookups: list[str]) -> None:
    # Every manage.py command (migrate, qcluster…) runs the checks: a slow resolver must not
    # stall them. Names are checked when a webhook is sent, with fresh DNS.
    settings.NOTIFY_WEBHOOKS = ["https://hooks.example.com/run", "https://nowhere.example.invalid/hook"]
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}

    assert notify_webhooks_allowed() == []
    call_command("check", stdout=io.StringIO())

    assert dns_lookups == []


def test_the_start_up_check_still_refuses_an_internal_address_without_dns(
    settings: Any, dns_lookups: list[str]
) -> None:
    settings.NOTIFY_WEBHOOKS = ["https://hooks.example.com/run", "http://10.0.0.7/hook"]
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}

    errors = notify_webhooks_allowed()

    assert [e.id for e in errors] == ["dataflow.E002"]
    assert "http://10.0.0.7/hook points at 10.0.0.7, a private address" in errors[0].msg
    assert dns_lookups == []
