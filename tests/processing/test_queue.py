"""The run queue when the broker is down or loses tasks (a real Redis broker, stopped and started).

The Run row is the outbox: a run whose task never reached the broker, or was
thrown away by a worker, stays ``queued`` and the reaper sends it again.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ingestion.models import Dataset, Source
from ingestion.storage import data_storage
from processing.models import Run, RunStatus
from processing.services.broker import BrokerUnavailable, task_enqueue
from processing.services.runs import SEND_GRACE, file_enqueue, file_ingest, run_execute, runs_reap
from tests.conftest import SALES_HEADER, RedisServer, all_apps, sales_row, work_off_queue
from tests.records import records

# Transactional: the task is sent when the run commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True, available_apps=all_apps())

NOT_CLAIMED = "not claimed (already taken or ended)"


def sales_file(csv_file: Callable[..., Path], rows: int = 5) -> Path:
    return csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, rows + 1))]) + "\n")


def enqueue_refused(dataset: Dataset, path: Path) -> Run:
    with path.open("rb") as fh, pytest.raises(BrokerUnavailable) as refused:
        file_enqueue(dataset=dataset, source=fh)
    return Run.objects.get(pk=refused.value.run_id)


def age(run: Run, **fields: timedelta) -> None:
    """Move the run's timestamps into the past, as if the clock had run on."""
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(**{name: now - delta for name, delta in fields.items()})


def test_a_run_the_broker_refuses_is_kept_queued_with_its_file(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer
) -> None:
    redis_broker.stop()

    run = enqueue_refused(sales, sales_file(csv_file))

    assert (run.status, run.enqueued_at, run.enqueue_count) == (RunStatus.QUEUED, None, 0)
    assert data_storage().exists(run.raw_file.storage_name)


def test_the_refusal_says_the_run_is_kept_and_will_be_sent(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer
) -> None:
    redis_broker.stop()
    with sales_file(csv_file).open("rb") as fh, pytest.raises(BrokerUnavailable) as refused:
        file_enqueue(dataset=sales, source=fh)

    message = str(refused.value)
    assert "\n" not in message
    assert f"Run {refused.value.run_id} is kept queued and will be sent to a worker when the queue is back" in message
    assert "ConnectionError" in message


def test_the_reaper_sends_a_refused_run_once_the_broker_is_back(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer
) -> None:
    redis_broker.stop()
    run = enqueue_refused(sales, sales_file(csv_file))
    age(run, created_at=SEND_GRACE + timedelta(seconds=1))

    assert runs_reap()["resent"] == 0  # still down: the run waits, nothing raised
    run.refresh_from_db()
    assert (run.status, run.enqueued_at) == (RunStatus.QUEUED, None)

    redis_broker.start()
    assert runs_reap()["resent"] == 1
    run.refresh_from_db()
    assert run.enqueued_at is not None and run.enqueue_count == 1
    assert len(redis_broker.waiting_tasks()) == 1

    assert work_off_queue() == [RunStatus.SUCCEEDED]
    run.refresh_from_db()
    assert (run.status, run.rows_inserted, run.attempts) == (RunStatus.SUCCEEDED, 5, 1)


def test_the_reaper_leaves_a_run_its_door_is_still_sending(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer
) -> None:
    redis_broker.stop()
    enqueue_refused(sales, sales_file(csv_file))
    redis_broker.start()

    # Committed a moment ago: its door sends it (or reports that it could not).
    assert runs_reap()["resent"] == 0
    assert redis_broker.waiting_tasks() == []


def test_the_reaper_sends_again_a_task_that_a_worker_with_another_secret_key_discarded(
    sales: Dataset,
    csv_file: Callable[..., Path],
    redis_broker: RedisServer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_q.conf import Conf

    with monkeypatch.context() as before_the_key_changed:
        before_the_key_changed.setattr(Conf, "SECRET_KEY", "the-secret-key-before-it-was-rotated-0123456789")
        with sales_file(csv_file).open("rb") as fh:
            run = file_enqueue(dataset=sales, source=fh)
    run.refresh_from_db()
    assert run.enqueue_count == 1

    assert work_off_queue() == []  # the worker cannot verify the task and throws it away
    assert redis_broker.waiting_tasks() == []
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED

    assert runs_reap()["resent"] == 0  # sent recently: it may still be waiting for a worker
    age(run, enqueued_at=timedelta(seconds=settings.RUN_REQUEUE_AFTER + 1))
    assert runs_reap()["resent"] == 1

    assert work_off_queue() == [RunStatus.SUCCEEDED]
    run.refresh_from_db()
    assert (run.status, run.rows_inserted, run.enqueue_count) == (RunStatus.SUCCEEDED, 5, 2)


def test_a_run_sent_again_while_its_first_task_waits_is_processed_once(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer, settings: Any
) -> None:
    with sales_file(csv_file, rows=30).open("rb") as fh:
        run = file_enqueue(dataset=sales, source=fh)
    age(run, enqueued_at=timedelta(seconds=settings.RUN_REQUEUE_AFTER + 1))
    assert runs_reap()["resent"] == 1  # the first task is only slow, not lost
    task_enqueue(run.pk)  # and a third delivery, for good measure

    assert sorted(work_off_queue()) == [NOT_CLAIMED, NOT_CLAIMED, RunStatus.SUCCEEDED]
    run.refresh_from_db()
    assert (run.status, run.attempts, run.rows_inserted, run.rows_unchanged) == (RunStatus.SUCCEEDED, 1, 30, 0)
    assert records(sales).count() == 30


def test_the_reaper_does_not_send_runs_that_are_running_or_ended(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer, settings: Any
) -> None:
    long_ago = timedelta(seconds=settings.RUN_REQUEUE_AFTER + 1)
    ended = enqueue_refused_then_finish(sales, csv_file, redis_broker)
    age(ended, created_at=long_ago)
    with sales_file(csv_file, rows=2).open("rb") as fh:
        running = file_enqueue(dataset=sales, source=fh)
    Run.objects.filter(pk=running.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now())
    age(running, enqueued_at=long_ago, created_at=long_ago)

    assert runs_reap()["resent"] == 0


def enqueue_refused_then_finish(dataset: Dataset, csv_file: Callable[..., Path], redis: RedisServer) -> Run:
    redis.stop()
    run = enqueue_refused(dataset, sales_file(csv_file, rows=3))
    redis.start()
    finished = run_execute(run_id=run.pk)
    assert finished is not None and finished.status == RunStatus.SUCCEEDED
    return finished


# --- The command-line doors -----------------------------------------------------------


def test_ingest_csv_async_answers_a_broker_outage_with_a_one_line_error(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer
) -> None:
    redis_broker.stop()
    with pytest.raises(CommandError) as error:
        call_command("ingest_csv", str(sales_file(csv_file)), "--dataset", "sales", "--async")

    run = Run.objects.get()
    assert run.status == RunStatus.QUEUED
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("The job queue is unavailable (")
    assert f"Run {run.pk} is kept queued and will be sent to a worker when the queue is back" in message


def test_pull_source_async_answers_a_broker_outage_with_a_one_line_error(
    make_source: Callable[..., Source], redis_broker: RedisServer
) -> None:
    source = make_source()
    redis_broker.stop()
    with pytest.raises(CommandError) as error:
        call_command("pull_source", source.name, "--async")

    run = Run.objects.get(source=source)
    assert run.status == RunStatus.QUEUED
    assert f"Run {run.pk} is kept queued" in str(error.value)
    assert "\n" not in str(error.value)


def test_run_status_says_a_refused_run_is_not_in_the_queue_yet(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer
) -> None:
    redis_broker.stop()
    run = enqueue_refused(sales, sales_file(csv_file))
    out = io.StringIO()

    call_command("run_status", str(run.pk), stdout=out)

    assert "not in the job queue yet (it was unavailable): the reaper sends it when the queue is back" in out.getvalue()


def test_a_run_processed_now_ends_normally_when_its_notification_cannot_be_queued(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer, settings: Any
) -> None:
    settings.NOTIFY_WEBHOOKS = ["http://127.0.0.1:9/hook"]
    redis_broker.stop()

    with csv_file("id,timestamp\nS1,2024-01-01\n").open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh)

    assert run.status == RunStatus.FAILED and "missing" in run.error


# --- The console ----------------------------------------------------------------------


def test_the_console_warns_and_shows_the_kept_run_when_the_queue_is_down(
    sales: Dataset, csv_file: Callable[..., Path], redis_broker: RedisServer
) -> None:
    from django.urls import reverse

    from ingestion.models import RawFile
    from tests.processing.test_admin import client_for, upload

    operator = client_for(superuser=True)
    upload(operator, sales, sales_file(csv_file))
    redis_broker.stop()

    confirmed = operator.post(
        reverse("admin:processing_run_preview", args=[RawFile.objects.get().pk]), {"action": "confirm"}, follow=True
    )
    run = Run.objects.get()
    assert confirmed.redirect_chain[-1][0] == reverse("admin:processing_run_change", args=[run.pk])
    assert f"Run {run.pk} is kept queued and will be sent to a worker" in confirmed.content.decode()

    redis_broker.start()
    run_execute(run_id=run.pk)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    redis_broker.stop()
    retried = operator.post(reverse("admin:processing_run_retry", args=[run.pk]), follow=True)
    retry = Run.objects.get(parent=run)
    assert retried.redirect_chain[-1][0] == reverse("admin:processing_run_change", args=[retry.pk])
    assert f"Run {retry.pk} is kept queued" in retried.content.decode()
    assert retry.status == RunStatus.QUEUED
