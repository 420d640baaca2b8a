"""Shared fixtures: isolated data storage, the example dataset, and a file writer."""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import time
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


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test gets its own DATA_DIR, so file placement can be checked."""
    root = tmp_path_factory.mktemp("data")
    settings.STORAGES = {
        **settings.STORAGES,
        "dataflow": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    settings.DATAFLOW = {**settings.DATAFLOW, "WORK_DIR": root / "work"}
    return root


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A throw-away ``redis-server`` on a free loopback port that a test can stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.from_url(self.url)

    def start(self) -> RedisServer:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([*command, "--dir", str(self.folder)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def waiting_tasks(self) -> list[bytes]:
        """The signed task payloads waiting in django-q2's list."""
        from django_q.brokers import get_broker

        return list(self.client().lrange(get_broker().list_key, 0, -1))


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_broker(redis_server: RedisServer, settings: Any, monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    """django-q2 with ``redis_server`` as its broker (as with REDIS_URL set).

    django-q2 reads Q_CLUSTER once, into ``Conf``, when it is imported: both change.
    """
    from django_q.conf import Conf

    settings.Q_CLUSTER = {k: v for k, v in settings.Q_CLUSTER.items() if k != "orm"} | {"redis": redis_server.url}
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", redis_server.url)
    return redis_server


def work_off_queue(rounds: int = 20) -> list[Any]:
    """Do here what a qcluster does with the tasks waiting on the broker; returns their results.

    django-q2's own pusher takes each task off the broker and throws away
    those whose signature does not verify (signed with another SECRET_KEY);
    the rest run as a worker would run them.
    """
    from multiprocessing import Event

    from django.utils.module_loading import import_string
    from django_q.brokers import get_broker
    from django_q.pusher import pusher
    from django_q.queues import Queue

    broker = get_broker()
    results: list[Any] = []
    for _ in range(rounds):
        if not broker.queue_size():
            break
        tasks: Queue = Queue()
        stop = Event()
        stop.set()  # one pass of the pusher's loop
        pusher(tasks, stop, broker=broker)
        while True:
            try:
                task = tasks.get(timeout=0.5)
            except queue.Empty:
                break
            func = import_string(task["func"]) if isinstance(task["func"], str) else task["func"]
            results.append(func(*task["args"], **task["kwargs"]))
            if task.get("ack_id") is not None:
                broker.acknowledge(task["ack_id"])
    return results


def all_apps() -> list[str]:
    """Every installed app, for ``django_db(transaction=True, available_apps=all_apps())``.

    With ``available_apps`` a transactional test recreates content types and
    permissions when it starts and leaves the database empty when it ends, so
    it works after any other transactional test, and the serialized ones
    after it (tests/dataflow/test_health.py) can load their snapshot.
    """
    from django.apps import apps

    return [config.name for config in apps.get_app_configs()]
