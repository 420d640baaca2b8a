"""Helpers for the data-quality tests: a generated sales-like file and a dataset declaring checks."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingestion.models import Dataset
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from processing.models import Run
from processing.services.runs import file_ingest

ORDERS_SCHEMA: dict[str, Any] = {
    "slug": "orders",
    "name": "Orders",
    "key": ["id"],
    "delimiter": ",",
    "fields": [
        {"name": "id", "type": "integer", "required": True},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "datetime"},
        {"name": "price", "type": "decimal"},
        {"name": "ratio", "type": "float"},
        {"name": "category", "type": "string"},
        {"name": "note", "type": "string"},
        {"name": "email", "type": "email"},
        {"name": "paid", "type": "boolean"},
    ],
}
HEADER = "id,day,at,price,ratio,category,note,email,paid"
CATEGORIES = ["books", "toys", "garden", "food"]


def orders_rows(count: int, *, seed: int = 1, start: int = 1, null_share: float = 0.1) -> list[str]:
    """Rows of a seeded generator: prices around 50, a few categories, some empty values."""
    rng = random.Random(seed)
    rows = []
    for n in range(start, start + count):
        empty = rng.random() < null_share
        price = "" if empty else f"{max(0.01, rng.gauss(50, 15)):.2f}"
        note = "" if rng.random() < 0.2 else "x" * rng.randint(1, 30)
        day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        at = f"2024-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
        rows.append(
            f"{n},{day},{at},{price},{rng.random():.6f},{rng.choice(CATEGORIES)},{note},"
            f"u{n}@example.com,{rng.choice(['true', 'false'])}"
        )
    return rows


def orders_text(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def apply_orders(checks: list[dict[str, Any]] | None = None) -> Dataset:
    data = json.loads(json.dumps(ORDERS_SCHEMA))
    if checks is not None:
        data["checks"] = checks
    return dataset_apply(spec=schema_parse(data)).dataset


@pytest.fixture
def orders(db: None) -> Dataset:
    return apply_orders()


@pytest.fixture
def ingest(csv_file: Callable[..., Path]) -> Callable[..., Run]:
    def load(dataset: Dataset, text: str, **kwargs: Any) -> Run:
        path = csv_file(text)
        with path.open("rb") as fh:
            return file_ingest(dataset=dataset, source=fh, original_name=path.name, **kwargs)

    return load
