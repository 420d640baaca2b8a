"""A run's profile, checked against statistics computed independently (pandas) on the same file."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import pandas as pd
import pytest

from ingestion.models import Dataset
from ingestion.schema import schema_parse
from processing.models import Run, RunQuality, RunStatus
from processing.pipeline.columnar import polars_usable
from processing.pipeline.copytext import copy_line
from processing.quality.profile import SAMPLE_SIZE, SKETCH_SIZE, RunProfile, chunk_profile

from .conftest import orders_rows, orders_text

pytestmark = pytest.mark.django_db


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def test_profile_matches_pandas_on_the_same_file(orders: Dataset, ingest: Callable[..., Run]) -> None:
    # 1,500 rows in chunks of 400: several chunks merged, every sample and sketch still exact.
    text = orders_text(orders_rows(1500, seed=7))
    run = ingest(orders, text, chunk_size=400)
    assert run.status == RunStatus.SUCCEEDED
    profile = RunQuality.objects.get(run=run).profile
    df = _frame(text)
    assert profile["rows"] == 1500
    fields = profile["fields"]

    price = pd.to_numeric(df["price"].replace("", None))
    p = fields["price"]
    assert p["count"] == 1500
    assert p["nulls"] == int(price.isna().sum())
    assert p["null_share"] == pytest.approx(price.isna().mean())
    assert p["distinct"] == price.dropna().nunique() and p["distinct_exact"]
    assert p["min"] == pytest.approx(price.min()) and p["max"] == pytest.approx(price.max())
    assert p["mean"] == pytest.approx(price.mean())
    assert p["std"] == pytest.approx(price.std())  # pandas: sample standard deviation too
    assert p["quantiles_exact"]
    for q in (0.01, 0.25, 0.5, 0.75, 0.99):
        assert p["quantiles"][f"p{round(q * 100)}"] == pytest.approx(price.quantile(q))

    ratio = pd.to_numeric(df["ratio"])
    assert fields["ratio"]["mean"] == pytest.approx(ratio.mean())
    assert fields["ratio"]["quantiles"]["p50"] == pytest.approx(ratio.median(), rel=0.05)  # 1,500 > sample

    day = pd.to_datetime(df["day"])
    d = fields["day"]
    assert (d["min"], d["max"]) == (day.min().date().isoformat(), day.max().date().isoformat())
    assert d["distinct"] == day.nunique()
    assert d["std"] == pytest.approx(day.std() / pd.Timedelta(days=1))

    at = pd.to_datetime(df["at"], utc=True)
    a = fields["at"]
    assert a["min"] == at.min().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert a["max"] == at.max().strftime("%Y-%m-%dT%H:%M:%SZ")

    category = df["category"]
    c = fields["category"]
    assert c["distinct"] == category.nunique() == 4
    counts = category.value_counts()
    assert {t["value"]: t["count"] for t in c["top"]} == counts.to_dict()
    assert c["length"]["min"] == category.str.len().min()

    note = df["note"].replace("", None).dropna()
    n = fields["note"]
    assert n["nulls"] == 1500 - len(note)
    assert n["length"] == {
        "min": note.str.len().min(),
        "max": note.str.len().max(),
        "mean": pytest.approx(note.str.len().mean()),
    }

    i = fields["id"]
    assert i["distinct"] == 1500 and i["distinct_share"] == 1.0
    assert i["top"] is None  # more distinct values than are counted
    paid = fields["paid"]
    assert {t["value"]: t["count"] for t in paid["top"]} == df["paid"].value_counts().to_dict()


def test_profile_counts_only_valid_rows(orders: Dataset, ingest: Callable[..., Run]) -> None:
    rows = orders_rows(50, seed=3)
    rows.append("51,not-a-date,,1.00,0.5,books,,u51@example.com,true")
    run = ingest(orders, orders_text(rows))
    assert run.status == RunStatus.PARTIALLY_SUCCEEDED
    profile = RunQuality.objects.get(run=run).profile
    assert profile["rows"] == 50
    assert profile["fields"]["id"]["max"] == 50


def test_sketches_estimate_past_their_bound() -> None:
    spec = schema_parse({"slug": "n", "key": ["id"], "fields": [{"name": "id", "type": "integer", "required": True}]})
    count = 30_000
    lines = [copy_line(str(i), i + 1, [i]) for i in range(count)]
    # Only a process that asked polars_usable() first may use polars (a fork of one that did may not).
    for use_polars in (polars_usable(), False):
        merged = RunProfile(spec)
        for start in range(0, count, 3000):  # ten chunks, merged as the loader merges them
            chunk = chunk_profile(spec, lines[start : start + 3000], use_polars=use_polars)
            merged.merge(chunk)
        assert len(merged.fields["id"].sketch) == SKETCH_SIZE
        assert len(merged.fields["id"].sample) == SAMPLE_SIZE
        stats = merged.to_json()["fields"]["id"]
        assert not stats["distinct_exact"] and not stats["quantiles_exact"]
        assert math.isclose(stats["distinct"], count, rel_tol=0.1)
        assert (stats["min"], stats["max"]) == (0, count - 1)
        assert stats["mean"] == pytest.approx((count - 1) / 2)
        assert stats["std"] == pytest.approx(pd.Series(range(count)).std())
        assert stats["quantiles"]["p50"] == pytest.approx(count / 2, rel=0.1)
        assert stats["quantiles"]["p95"] == pytest.approx(0.95 * count, rel=0.05)


def test_profiling_can_be_turned_off(orders: Dataset, ingest: Callable[..., Run], settings: object) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "PROFILE": False}  # type: ignore[attr-defined]
    run = ingest(orders, orders_text(orders_rows(20)))
    assert run.status == RunStatus.SUCCEEDED
    assert RunQuality.objects.get(run=run).profile is None


def test_profile_is_not_sent_between_runs(orders: Dataset, ingest: Callable[..., Run]) -> None:
    first = ingest(orders, orders_text(orders_rows(30, seed=1)))
    second = ingest(orders, orders_text(orders_rows(10, seed=2, start=100)))
    assert RunQuality.objects.get(run=first).profile["rows"] == 30
    assert RunQuality.objects.get(run=second).profile["rows"] == 10


def test_columns_and_plain_python_give_the_same_statistics() -> None:
    """The polars path and the row-by-row path (a process that may not use polars) agree, escapes and nulls included."""
    spec = schema_parse(
        {
            "slug": "m",
            "key": ["id"],
            "fields": [
                {"name": "id", "type": "integer", "required": True},
                {"name": "text", "type": "string"},
                {"name": "day", "type": "date"},
                {"name": "at", "type": "datetime"},
                {"name": "amount", "type": "float"},
                {"name": "flag", "type": "boolean"},
            ],
        }
    )
    texts = ["tab\there", "back\\slash", "new\nline", "plain", None, "é accent"]
    lines = [
        copy_line(
            str(i),
            i + 2,
            [
                i,
                texts[i % len(texts)],
                None if i % 9 == 0 else f"2023-0{1 + i % 9}-1{i % 10}",
                f"2024-05-06T07:08:{i % 60:02d}.250000Z",
                i * 0.25 - 7,
                i % 3 == 0,
            ],
        )
        for i in range(700)
    ]
    fast = chunk_profile(spec, lines, use_polars=polars_usable())
    plain = chunk_profile(spec, lines, use_polars=False)
    for name, a in fast.fields.items():
        b = plain.fields[name]
        assert len(a.sketch) == len(b.sketch), name
        # Samples and sketches hash differently on each path (a run's chunks all take one): sizes agree.
        assert len(a.sample) == len(b.sample), name
        for attr in ("count", "nulls", "n", "min", "max", "top", "len_min", "len_max", "len_sum"):
            assert getattr(a, attr) == getattr(b, attr), (name, attr)
        assert a.mean == pytest.approx(b.mean) and a.m2 == pytest.approx(b.m2), name
    assert fast.fields["text"].top == {
        "tab\there": 117,
        "back\\slash": 117,
        "new\nline": 117,
        "plain": 117,
        "é accent": 116,
    }
