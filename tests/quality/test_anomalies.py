"""Anomalies on real sequences of files: normal runs raise none; a null jump, a volume drop and prices in cents do."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ingestion.models import Dataset
from processing.models import Run, RunQuality, RunStatus

from .conftest import orders_rows, orders_text

pytestmark = pytest.mark.django_db


def anomalies(run: Run) -> set[tuple[str, str | None]]:
    return {(a["kind"], a["field"]) for a in RunQuality.objects.get(run=run).anomalies}


def normal_run(orders: Dataset, ingest: Callable[..., Run], i: int) -> Run:
    # New seeds of the same generator, volume within ±10 %.
    count = 400 + (i * 37) % 80 - 40
    run = ingest(orders, orders_text(orders_rows(count, seed=100 + i, start=1 + i * 1000)))
    assert run.status == RunStatus.SUCCEEDED
    return run


def test_normal_runs_raise_nothing_and_real_changes_are_found(orders: Dataset, ingest: Callable[..., Run]) -> None:
    for i in range(8):
        assert anomalies(normal_run(orders, ingest, i)) == set(), i

    # A column that goes 60 % empty.
    jump = ingest(orders, orders_text(orders_rows(400, seed=300, start=50_000, null_share=0.6)))
    found = anomalies(jump)
    assert ("null_share", "price") in found
    assert ("row_count", None) not in found

    # A partner who sends 40 rows instead of the usual 400.
    drop = ingest(orders, orders_text(orders_rows(40, seed=301, start=60_000)))
    assert ("row_count", None) in anomalies(drop)

    # Prices in cents.
    rows = orders_rows(400, seed=302, start=70_000)
    cents = []
    for row in rows:
        cells = row.split(",")
        if cells[3]:
            cells[3] = str(round(float(cells[3]) * 100))
        cents.append(",".join(cells))
    drift = ingest(orders, orders_text(cents))
    assert ("mean", "price") in anomalies(drift)
    detail = next(a for a in RunQuality.objects.get(run=drift).anomalies if a["kind"] == "mean")
    assert detail["observed"] > detail["expected"][1] and detail["score"] >= 3.5


def test_the_first_runs_have_no_baseline(orders: Dataset, ingest: Callable[..., Run]) -> None:
    for i in range(4):
        normal_run(orders, ingest, i)
    # The 5th run has four earlier ones: judged from now on, and a drop is found.
    drop = ingest(orders, orders_text(orders_rows(30, seed=9, start=90_000)))
    assert ("row_count", None) in anomalies(drop)
