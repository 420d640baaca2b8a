"""Pulling HTTP sources end to end, against a partner API served on 127.0.0.1 by the test."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django_q.models import Schedule
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingestion.crypto import secret_decrypt
from ingestion.models import Dataset, RawFile, Source
from ingestion.services.sources import source_create, source_delete, source_update
from processing.models import RejectedRow, Run, RunStatus
from processing.services.previews import source_preview
from processing.services.runs import run_retry, source_pull_now, source_pull_scheduled
from processing.tasks import source_pull_task
from tests.conftest import run_queued_tasks
from tests.processing.conftest import TOKEN, PartnerAPI, record
from tests.records import records, records_total


@pytest.mark.django_db
def test_a_source_pulls_every_page_of_a_token_protected_api(make_source: Callable[..., Source], partner: PartnerAPI):
    source = make_source()

    run = source_pull_now(source=source)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.rows_read, run.rows_inserted, run.rows_rejected) == (25, 25, 0)
    assert [r.get("page") for r in partner.requests] == ["1", "2", "3", "4"]  # the 4th page is empty
    assert run.summary["pull"] | {"bytes": 0} == {
        "records": 25,
        "pages": 4,
        "bytes": 0,
        "watermark": "25",
        "stopped": "",
    }
    assert run.raw_file.format == RawFile.Format.NDJSON and run.raw_file.state == RawFile.State.ARCHIVED
    p7 = records(source.dataset).get(key="P7")
    assert p7.data["category"] == "books" and p7.data["email"] == "p7@example.com" and p7.data["country"] == "DE"
    assert (p7.last_run_id, p7.source_line) == (run.pk, 7)  # lineage: run, file and line
    source.refresh_from_db()
    assert source.watermark == "25"


@pytest.mark.django_db
def test_a_second_pull_asks_only_for_new_records(make_source: Callable[..., Source], partner: PartnerAPI):
    source = make_source()
    source_pull_now(source=source)
    partner.records += [record(n) for n in range(26, 31)]
    partner.records[0] = {**record(1), "quantity": 4, "updated": 31}  # an old record changed upstream
    partner.requests.clear()

    run = source_pull_now(source=source)

    assert all(r["since"] == "25" for r in partner.requests)
    assert (run.rows_read, run.rows_inserted, run.rows_updated) == (6, 5, 1)
    assert records(source.dataset).count() == 30
    source.refresh_from_db()
    assert source.watermark == "31"


@pytest.mark.django_db
def test_an_identical_payload_is_a_noop_run(make_source: Callable[..., Source]):
    source = make_source(cursor_field="", watermark_param="")
    first = source_pull_now(source=source)

    second = source_pull_now(source=source)

    assert second.status == RunStatus.SUCCEEDED and second.noop_of_id == first.pk
    assert second.raw_file.sha256 == first.raw_file.sha256
    assert records(source.dataset).count() == 25


@pytest.mark.django_db
def test_a_crash_mid_pull_stores_nothing_and_a_retry_loads_everything_once(
    make_source: Callable[..., Source], partner: PartnerAPI, settings: Any, django_capture_on_commit_callbacks: Any
):
    settings.SOURCES = {**settings.SOURCES, "MAX_RETRIES": 2}
    source = make_source()
    partner.fail_from_page = 3

    failed = source_pull_now(source=source)

    assert failed.status == RunStatus.FAILED
    assert "503" in failed.error and "3 attempts" in failed.error, failed.error
    assert failed.raw_file_id is None
    assert records_total() == 0
    source.refresh_from_db()
    assert source.watermark == ""

    partner.fail_from_page = None
    with django_capture_on_commit_callbacks(execute=True):
        retry = run_retry(run=failed)
    with_pending = run_queued_tasks()

    retry.refresh_from_db()
    assert with_pending and retry.status == RunStatus.SUCCEEDED and retry.parent_id == failed.pk
    assert records(source.dataset).count() == 25
    assert records(source.dataset).values("key").distinct().count() == 25


@pytest.mark.django_db
def test_wrong_credentials_fail_the_run_with_a_clear_reason(make_source: Callable[..., Source]):
    source = make_source(secret="not-the-token")

    run = source_pull_now(source=source)

    assert run.status == RunStatus.FAILED
    assert "401" in run.error and "credentials" in run.error
    assert "not-the-token" not in run.error


@pytest.mark.django_db
def test_records_that_break_the_schema_are_rejected_with_their_line(
    make_source: Callable[..., Source], partner: PartnerAPI
):
    partner.records[3] = {**record(4), "quantity": "lots"}
    partner.records[5] = {**record(6), "customer_email": None}
    source = make_source()

    run = source_pull_now(source=source)

    assert run.status == RunStatus.PARTIALLY_SUCCEEDED
    rejected = {r.line_number: r for r in RejectedRow.objects.filter(run=run)}
    assert set(rejected) == {4, 6}
    assert rejected[4].raw["quantity"] == "lots" and "quantity" in rejected[4].errors
    assert "email" in rejected[6].errors


@pytest.mark.django_db
def test_a_dry_run_preview_keeps_nothing_and_leaves_the_watermark(make_source: Callable[..., Source]):
    source = make_source()

    result = source_preview(source=source)

    assert result.pull["records"] == 25 and result.preview.inserted == 25
    assert Run.objects.count() == 0 and records_total() == 0 and RawFile.objects.count() == 0
    source.refresh_from_db()
    assert source.watermark == ""


@pytest.mark.django_db
def test_cloud_metadata_and_loopback_sources_are_refused_unless_allowed(
    make_source: Callable[..., Source], settings: Any
):
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    with pytest.raises(ValidationError) as metadata:
        make_source(url="http://169.254.169.254/latest/meta-data/")
    assert metadata.value.message_dict["url"] == [
        "http://169.254.169.254/latest/meta-data/ points at 169.254.169.254, a link-local address; "
        "sources may only reach public addresses unless SOURCE_ALLOWED_NETWORKS allows it"
    ]
    with pytest.raises(ValidationError):
        make_source(url="http://127.0.0.1:9/")

    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}
    source = make_source()  # allowed now: created
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    run = source_pull_now(source=source)  # and refused again at pull time, before connecting

    assert run.status == RunStatus.FAILED
    assert "is not an allowed destination" in run.error


@pytest.mark.django_db
def test_the_secret_is_stored_encrypted(make_source: Callable[..., Source]):
    source = make_source()

    assert TOKEN not in source.secret_encrypted
    assert secret_decrypt(source.secret_encrypted) == TOKEN
    source = source_update(source=source, data={"page_size": 5})
    assert secret_decrypt(source.secret_encrypted) == TOKEN  # kept when not given
    with pytest.raises(ValidationError, match="needs a secret"):
        source_update(source=source, data={}, secret="")


@pytest.mark.django_db
def test_the_schedule_follows_the_source(make_source: Callable[..., Source]):
    source = make_source(schedule=Source.Schedule.INTERVAL, interval_minutes=15)
    schedule = Schedule.objects.get(name=source.schedule_name)
    assert (schedule.schedule_type, schedule.minutes, schedule.func) == (
        Schedule.MINUTES,
        15,
        "processing.tasks.source_pull_task",
    )

    source_update(source=source, data={"schedule": Source.Schedule.CRON, "cron": "5 * * * *"})
    schedule.refresh_from_db()
    assert (schedule.schedule_type, schedule.cron) == (Schedule.CRON, "5 * * * *")

    source_update(source=source, data={"enabled": False})
    assert not Schedule.objects.filter(name=source.schedule_name).exists()

    source_update(source=source, data={"enabled": True})
    source_delete(source=source)
    assert not Schedule.objects.filter(name=source.schedule_name).exists()


@pytest.mark.django_db
def test_invalid_schedules_and_pagination_are_refused(make_source: Callable[..., Source]):
    with pytest.raises(ValidationError) as exc:
        make_source(schedule=Source.Schedule.CRON, cron="every day", pagination=Source.Pagination.CURSOR, next_path="")
    assert set(exc.value.message_dict) >= {"cron", "next_path"}


@pytest.mark.django_db
def test_the_scheduled_task_pulls_and_skips_disabled_sources(make_source: Callable[..., Source]):
    source = make_source(schedule=Source.Schedule.INTERVAL, interval_minutes=5)

    assert source_pull_task(source.pk).endswith(RunStatus.SUCCEEDED)
    run = Run.objects.get(source=source)
    assert run.trigger == "schedule" and run.rows_inserted == 25

    Source.objects.filter(pk=source.pk).update(enabled=False)
    assert source_pull_scheduled(source_id=source.pk) is None


@pytest.mark.django_db
def test_pull_source_command_reports_the_run(make_source: Callable[..., Source], capsys: Any):
    make_source()

    call_command("pull_source", "partner", "--json")

    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "succeeded" and report["rows_inserted"] == 25 and report["summary"]["pull"]["pages"] == 4


@pytest.mark.django_db
def test_pull_source_command_exits_3_when_the_pull_fails(make_source: Callable[..., Source], capsys: Any):
    make_source(secret="wrong")

    with pytest.raises(SystemExit) as exit_:
        call_command("pull_source", "partner")

    assert exit_.value.code == 3
    assert "401" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_slow_pull_keeps_its_heartbeat_fresh(sales: Dataset, httpserver: HTTPServer, monkeypatch: Any):
    """A long wait for a page must not look like a dead worker to the reaper."""
    import time

    from django.db import connection

    import processing.services.sources

    monkeypatch.setattr(processing.services.sources, "_BEAT_SECONDS", 0.1)
    seen: list[Any] = []

    def slow(request: Request) -> Response:
        first = Run.objects.get().heartbeat_at
        time.sleep(1.0)
        seen.append((first, Run.objects.get().heartbeat_at))
        connection.close()
        return Response("[]", content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    source = source_create(dataset=sales, data={"name": "slow", "url": httpserver.url_for("/slow")})

    run = source_pull_now(source=source)

    assert run.status == RunStatus.SUCCEEDED, run.error  # an empty pull is an empty run, not a failure
    assert run.rows_read == 0
    ((before, during),) = seen
    assert during > before
