"""Shared fixtures: isolated data storage, the example dataset, and a file writer."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion.models import Dataset
from ingestion.schema import schema_parse
from ingestion.services import dataset_apply

SALES_SCHEMA: dict[str, Any] = {
    "slug": "sales",
    "name": "Sales events",
    "key": ["id"],
    "delimiter": ",",
    "fields": [
        {"name": "id", "type": "string", "required": True, "max_length": 64, "transforms": ["strip"]},
        {"name": "timestamp", "type": "datetime", "required": True, "default_timezone": "UTC"},
        {
            "name": "category",
            "type": "string",
            "required": True,
            "transforms": ["strip", "lower"],
            "choices": ["books", "toys"],
        },
        {"name": "value", "type": "decimal", "thousands_separator": ",", "min": 0},
        {"name": "quantity", "type": "integer", "required": True, "min": 0},
        {"name": "email", "source": "customer_email", "type": "email", "required": True},
        {
            "name": "country",
            "type": "string",
            "required": True,
            "transforms": ["strip", "upper"],
            "pattern": "^[A-Z]{2}$",
        },
        {"name": "description", "type": "string", "max_length": 2000},
        {"name": "is_active", "type": "boolean", "required": True},
    ],
}
SALES_HEADER = "id,timestamp,category,value,quantity,customer_email,country,description,is_active"


def sales_row(n: int, *, quantity: int = 1, category: str = "books", description: str = "") -> str:
    """A valid CSV line for the sales dataset."""
    return f"S{n},2024-01-02T03:04:05Z,{category},{n}.50,{quantity},u{n}@example.com,us,{description},yes"


def use_data_dir(settings: Any, root: Path) -> None:
    """Store raw, archived and work files under ``root``."""
    settings.STORAGES = {
        **settings.STORAGES,
        "dataflow": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    settings.DATAFLOW = {**settings.DATAFLOW, "WORK_DIR": root / "work"}


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test gets its own DATA_DIR, so file placement can be checked."""
    root = tmp_path_factory.mktemp("data")
    use_data_dir(settings, root)
    return root


class SmallDisk:
    """A real tmpfs of a fixed size mounted as the data folder; it can be made read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def files(self) -> list[Path]:
        return [p for p in self.path.rglob("*") if p.is_file()]

    def used_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files())

    def make_read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True, capture_output=True)


@pytest.fixture
def small_disk(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallDisk]:
    """DATA_DIR on a 1 MB tmpfs (skipped where mounting is not permitted, e.g. not root)."""
    mount_point = tmp_path_factory.mktemp("small-disk")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}")
    use_data_dir(settings, mount_point)
    try:
        yield SmallDisk(mount_point)
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


@pytest.fixture
def sales(db: None) -> Dataset:
    return dataset_apply(spec=schema_parse(json.loads(json.dumps(SALES_SCHEMA)))).dataset


@pytest.fixture
def csv_file(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to a file and return its path."""
    counter = iter(range(1_000_000))

    def write(content: str | bytes, *, encoding: str = "utf-8", name: str | None = None) -> Path:
        path = tmp_path / (name or f"upload-{next(counter)}.csv")
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path

    return write


def run_queued_tasks() -> list[Any]:
    """Run what is waiting on the django-q2 ORM broker, here, as a worker would; returns the results."""
    from django.utils.module_loading import import_string
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker = get_broker()
    results: list[Any] = []
    while batch := broker.dequeue():
        for ack_id, payload in batch:
            task = SignedPackage.loads(payload)
            func = import_string(task["func"]) if isinstance(task["func"], str) else task["func"]
            results.append(func(*task["args"], **task["kwargs"]))
            broker.acknowledge(ack_id)
    return results
