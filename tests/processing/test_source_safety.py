"""What must never happen with sources: a stale pull winning, skipped records, a secret sent elsewhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.models import Schedule
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingestion.models import Dataset, Source
from ingestion.services.sources import source_create, source_update
from processing.models import Run, RunStatus
from processing.services.runs import run_replay, run_retry, source_pull_now
from processing.services.sources import SourceBusy, source_pull
from tests.conftest import run_queued_tasks
from tests.processing.conftest import PartnerAPI, record
from tests.records import records_total


@pytest.mark.django_db
def test_a_second_pull_is_refused_while_one_is_queued_or_running(make_source: Callable[..., Source]) -> None:
    source = make_source()
    first = source_pull(source=source)

    with pytest.raises(SourceBusy, match=f"already being pulled by run {first.pk}"):
        source_pull(source=source)
    with pytest.raises(SourceBusy):
        source_pull_now(source=source)
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_a_replayed_older_pull_never_rewinds_the_watermark(
    make_source: Callable[..., Source], partner: PartnerAPI, django_capture_on_commit_callbacks: Any
) -> None:
    source = make_source()
    old = source_pull_now(source=source)
    partner.records += [record(n) for n in range(26, 29)]
    source_pull_now(source=source)
    source.refresh_from_db()
    assert source.watermark == "28"

    with django_capture_on_commit_callbacks(execute=True):
        replay = run_replay(run=old)
    run_queued_tasks()

    replay.refresh_from_db()
    source.refresh_from_db()
    assert replay.status == RunStatus.SUCCEEDED and replay.source_id == source.pk
    assert source.watermark == "28"


@pytest.mark.django_db
def test_a_retried_pull_that_failed_in_the_pipeline_commits_its_watermark(
    make_source: Callable[..., Source], partner: PartnerAPI, sales: Dataset, django_capture_on_commit_callbacks: Any
) -> None:
    sales.reject_threshold = 0.01
    sales.save()
    partner.records[3] = {**record(4), "quantity": "lots"}
    source = make_source(page_size=100)
    failed = source_pull_now(source=source)
    assert failed.status == RunStatus.FAILED and failed.raw_file_id is not None
    sales.reject_threshold = None
    sales.save()

    with django_capture_on_commit_callbacks(execute=True):
        retry = run_retry(run=failed)
    run_queued_tasks()

    retry.refresh_from_db()
    source.refresh_from_db()
    assert retry.status == RunStatus.PARTIALLY_SUCCEEDED and retry.source_id == source.pk
    assert source.watermark == "25"


def _newest_first(records: list[dict[str, Any]]) -> Callable[[Request], Response]:
    def handle(request: Request) -> Response:
        since = int(request.args.get("since", "0"))
        page = int(request.args.get("page", "1"))
        rows = sorted((r for r in records if r["updated"] > since), key=lambda r: -r["updated"])
        return Response(json.dumps(rows[(page - 1) * 10 : page * 10]), content_type="application/json")

    return handle


@pytest.mark.django_db
def test_a_capped_pull_of_an_unordered_api_keeps_the_watermark_so_nothing_is_skipped(
    sales: Dataset, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/items").respond_with_handler(_newest_first([record(n) for n in range(1, 26)]))
    source = source_create(
        dataset=sales,
        data={
            "name": "newest-first",
            "url": httpserver.url_for("/items"),
            "pagination": "page",
            "max_pages": 1,
            "cursor_field": "updated",
            "watermark_param": "since",
        },
    )

    first = source_pull_now(source=source)

    source.refresh_from_db()
    assert first.summary["pull"]["stopped"] == "max_pages (1) reached"
    assert source.watermark == ""  # records 1-15 were not fetched: do not move past them
    source_pull_now(source=source)
    assert records_total() == 10  # a cap that never moves on is visible, not silent data loss
    assert Run.objects.filter(summary__pull__stopped__startswith="max_pages").count() == 2


@pytest.mark.django_db
def test_changing_where_a_secret_goes_needs_the_secret_again(make_source: Callable[..., Source]) -> None:
    source = make_source()

    with pytest.raises(ValidationError) as exc:
        source_update(source=source, data={"url": "https://elsewhere.example.com/steal"})
    assert "enter the secret again" in str(exc.value.message_dict["secret"])
    with pytest.raises(ValidationError):
        source_update(source=source, data={"auth": Source.Auth.API_KEY_QUERY})

    moved = source_update(source=source, data={"url": "https://elsewhere.example.com/x"}, secret="new-token")
    assert moved.url == "https://elsewhere.example.com/x"
    source_update(source=moved, data={"page_size": 7})  # same host and auth: the secret is kept


@pytest.mark.django_db
def test_credentials_http_cannot_carry_are_refused_on_save(make_source: Callable[..., Source]) -> None:
    with pytest.raises(ValidationError) as exc:
        make_source(secret="tok€n")
    assert "Latin-1" in str(exc.value.message_dict["secret"])
    with pytest.raises(ValidationError):
        make_source(headers={"X-Trace": "a\r\nInjected: yes"})


@pytest.mark.django_db
def test_an_edit_that_keeps_the_timing_does_not_move_the_next_scheduled_pull(sales: Dataset) -> None:
    source = source_create(
        dataset=sales,
        data={"name": "nightly", "url": "https://api.example.com/x", "schedule": "cron", "cron": "0 3 * * *"},
    )
    schedule = Schedule.objects.get(name=source.schedule_name)
    planned = schedule.next_run
    assert planned > timezone.now() + timedelta(seconds=5)

    source_update(source=source, data={"headers": {"X-Trace": "1"}})

    schedule.refresh_from_db()
    assert schedule.next_run == planned


@pytest.mark.django_db
def test_a_scheduled_pull_of_a_dataset_without_schema_is_skipped_not_crashed(make_source: Callable[..., Source]):
    from processing.tasks import source_pull_task

    source = make_source()
    Dataset.objects.filter(pk=source.dataset_id).update(current_schema=None)

    assert source_pull_task(source.pk).startswith("skipped")
    assert not Run.objects.exists()
