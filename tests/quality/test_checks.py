"""Declared checks on real runs: each kind passing and failing, warn against error severity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from ingestion.models import Dataset
from ingestion.storage import data_storage
from processing.models import RejectedRow, Run, RunQuality, RunStatus
from processing.notifications import run_notification_payload, run_notify, run_notify_event
from processing.services.runs import run_execute, run_retry
from tests.records import records

from .conftest import apply_orders, orders_rows, orders_text

pytestmark = pytest.mark.django_db


def results(run: Run) -> dict[str, dict[str, Any]]:
    return {f"{c['kind']}:{c['field'] or ''}": c for c in RunQuality.objects.get(run=run).checks}


# Each kind, with a range this file passes and one it fails. The file: 200 rows,
# ~10 % empty prices (seeded) averaging ~50, four categories, unique ids.
KINDS = [
    ("row_count", {}, {"at_least": 100, "at_most": 500}, {"at_least": 1000}),
    ("null_share", {"field": "price"}, {"at_most": 0.2}, {"at_most": 0.01}),
    ("distinct_share", {"field": "id"}, {"at_least": 0.99}, {"at_least": 1.0, "field": "category"}),
    ("min", {"field": "price"}, {"at_least": 0}, {"at_least": 30}),
    ("max", {"field": "price"}, {"at_most": 1000}, {"at_most": 60}),
    ("mean", {"field": "price"}, {"at_least": 40, "at_most": 60}, {"at_least": 70}),
    ("min", {"field": "day"}, {"at_least": "2024-01-01"}, {"at_least": "2024-06-01"}),
    ("max", {"field": "at"}, {"at_most": "2024-12-31T00:00:00Z"}, {"at_most": "2024-03-02T00:00:00Z"}),
]


@pytest.mark.parametrize(
    ("kind", "base", "passing", "failing"), KINDS, ids=[f"{k[0]}-{i}" for i, k in enumerate(KINDS)]
)
def test_each_kind_passes_and_fails(
    db: None,
    ingest: Callable[..., Run],
    kind: str,
    base: dict[str, Any],
    passing: dict[str, Any],
    failing: dict[str, Any],
) -> None:
    dataset = apply_orders([{"kind": kind, **base, **passing}])
    good = ingest(dataset, orders_text(orders_rows(200, seed=5)))
    assert good.status == RunStatus.SUCCEEDED
    (result,) = RunQuality.objects.get(run=good).checks
    assert (result["kind"], result["status"], result["severity"]) == (kind, "passed", "warn")

    dataset = apply_orders([{"kind": kind, **base, **failing}])
    bad = ingest(dataset, orders_text(orders_rows(200, seed=6, start=1000)))
    # warn: the run loads, the check says failed.
    assert bad.status == RunStatus.SUCCEEDED
    (result,) = RunQuality.objects.get(run=bad).checks
    assert result["status"] == "failed", result
    assert result["observed"] is not None and result["message"]


def test_freshness_compares_with_the_previous_successful_load(orders: Dataset, ingest: Callable[..., Run]) -> None:
    apply_orders([{"kind": "freshness", "hours": 24}])
    first = ingest(orders, orders_text(orders_rows(10, seed=1)))
    assert results(first)["freshness:"]["status"] == "passed"  # nothing to compare with yet
    Run.objects.filter(pk=first.pk).update(finished_at=timezone.now() - timedelta(hours=30))
    late = ingest(orders, orders_text(orders_rows(10, seed=2, start=100)))
    check = results(late)["freshness:"]
    assert check["status"] == "failed"
    assert 29.9 < check["observed"] < 30.1
    on_time = ingest(orders, orders_text(orders_rows(10, seed=3, start=200)))
    assert results(on_time)["freshness:"]["status"] == "passed"


def test_a_failed_warn_check_notifies_once_for_the_run(
    orders: Dataset, ingest: Callable[..., Run], settings: Any
) -> None:
    settings.NOTIFY_EMAILS = ["ops@example.com"]
    apply_orders(
        [
            {"kind": "null_share", "field": "price", "at_most": 0.01},
            {"kind": "mean", "field": "price", "at_least": 500},
            {"kind": "row_count", "at_least": 1},
        ]
    )
    run = ingest(orders, orders_text(orders_rows(100, seed=9)))
    assert run.status == RunStatus.SUCCEEDED
    assert run_notify_event(run) == "run.checks"
    payload = run_notification_payload(run, "run.checks")
    assert [c["status"] for c in payload["run"]["checks"]] == ["failed", "failed", "passed"]
    assert run_notify(run_id=run.pk, event="run.checks") == {"sent": 1, "failed": 0}
    (message,) = mail.outbox
    assert "failed data-quality checks" in message.subject
    assert message.body.count("check null_share failed") == 1 and "check mean failed" in message.body


def test_passing_checks_do_not_notify(orders: Dataset, ingest: Callable[..., Run]) -> None:
    apply_orders([{"kind": "row_count", "at_least": 1}])
    run = ingest(orders, orders_text(orders_rows(10)))
    assert run_notify_event(run) is None


def test_an_error_check_fails_the_run_before_anything_loads_and_a_retry_passes_once_relaxed(
    orders: Dataset, ingest: Callable[..., Run]
) -> None:
    apply_orders([{"kind": "row_count", "at_least": 1000, "severity": "error"}])
    rows = orders_rows(300, seed=4)
    rows.append("301,bad-date,,1.00,0.5,books,,u301@example.com,true")
    # Small chunks: the check is decided on the whole file, before the first chunk commits.
    run = ingest(orders, orders_text(rows), chunk_size=50)
    assert run.status == RunStatus.FAILED
    assert "failed data-quality checks, nothing loaded" in run.error and "row count is 300, below 1000" in run.error
    assert records(orders).count() == 0
    assert not RejectedRow.objects.filter(run=run).exists()
    assert (run.rows_read, run.rows_inserted) == (0, 0)
    check = results(run)["row_count:"]
    assert (check["status"], check["severity"], check["decided"]) == ("failed", "error", "before loading")
    assert RunQuality.objects.get(run=run).profile["rows"] == 300
    # The file is kept.
    run.raw_file.refresh_from_db()
    assert data_storage().exists(run.raw_file.storage_name)
    assert run_notify_event(run) == "run.failed"

    apply_orders([{"kind": "row_count", "at_least": 100, "severity": "error"}])
    retry = run_retry(run=run)
    done = run_execute(run_id=retry.pk)
    assert done is not None and done.status == RunStatus.PARTIALLY_SUCCEEDED
    assert records(orders).count() == 300
    assert results(done)["row_count:"]["status"] == "passed"
    assert RunQuality.objects.get(run=done).profile["rows"] == 300


def test_warn_and_error_checks_together(orders: Dataset, ingest: Callable[..., Run]) -> None:
    apply_orders(
        [
            {"kind": "null_share", "field": "price", "at_most": 0.5, "severity": "error"},
            {"kind": "mean", "field": "price", "at_least": 500},
        ]
    )
    run = ingest(orders, orders_text(orders_rows(120, seed=11)), chunk_size=50)
    assert run.status == RunStatus.SUCCEEDED
    assert records(orders).count() == 120
    found = results(run)
    assert (found["null_share:price"]["status"], found["null_share:price"]["decided"]) == ("passed", "before loading")
    assert (found["mean:price"]["status"], found["mean:price"]["decided"]) == ("failed", "at the end")
