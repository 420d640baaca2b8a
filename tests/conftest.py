"""Shared fixtures: isolated data storage, the example dataset, and a file writer."""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

from ingestion.models import Dataset
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from tests.records import dataset_tables_drop

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
def dataset_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that commit (transactional_db, live servers) leave no dataset table behind.

    Set up after the database fixture, so torn down before its flush, which
    could not empty the runs that the dataset tables point at.
    """
    marker = request.node.get_closest_marker("django_db")
    by_mark = marker is not None and bool(marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    by_fixture = any(name in request.fixturenames for name in ("transactional_db", "live_server"))
    if not (by_mark or by_fixture):
        yield
        return
    request.getfixturevalue("transactional_db" if by_fixture else "_django_db_helper")
    yield
    dataset_tables_drop()


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


NOTES_SCHEMA: dict[str, Any] = {
    "slug": "notes",
    "name": "Free-text notes",
    "key": ["id"],
    "delimiter": ",",
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "text", "type": "string"},
        {"name": "count", "type": "integer"},
        {"name": "flag", "type": "boolean"},
    ],
}


@pytest.fixture
def notes(db: None) -> Dataset:
    """A dataset with one untransformed text field, for values that are hard to write as CSV."""
    return dataset_apply(spec=schema_parse(json.loads(json.dumps(NOTES_SCHEMA)))).dataset


@pytest.fixture
def csv_file(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to a file and return its path."""
    counter = iter(range(1_000_000))

    def write(content: str | bytes, *, encoding: str = "utf-8", name: str | None = None) -> Path:
        path = tmp_path / (name or f"upload-{next(counter)}.csv")
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path

    return write


# Python's audit hooks report every socket.getaddrinfo with the name looked up: a way to prove
# that no DNS query was made, with no mock in the way. Hooks cannot be removed; this one only
# records while a test asks.
_lookup_recorders: list[list[str]] = []


def _audit_lookups(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.getaddrinfo" and _lookup_recorders:
        _lookup_recorders[-1].append(str(args[0]))


sys.addaudithook(_audit_lookups)


@pytest.fixture
def dns_lookups() -> Iterator[list[str]]:
    """The host names passed to ``socket.getaddrinfo`` (in any thread) while the test runs."""
    seen: list[str] = []
    _lookup_recorders.append(seen)
    yield seen
    _lookup_recorders.remove(seen)


@pytest.fixture(params=["csv_and_pandas", "postgres_copy"])
def csv_reader(request: pytest.FixtureRequest) -> str:
    """Each reader a written CSV file must read back with (tests/csv_readers.py).

    Request it before fixtures that load data: on SQLite the COPY run is skipped, with its
    reason shown, before anything is loaded.
    """
    if request.param == "postgres_copy" and connection.vendor != "postgresql":
        pytest.skip("the Postgres COPY reader needs PostgreSQL (run with DATABASE_URL=postgres://...)")
    return str(request.param)


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


# A dataset of plain text columns, for files written in every encoding.
PEOPLE_SCHEMA: dict[str, Any] = {
    "slug": "people",
    "key": ["id"],
    "delimiter": ",",
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "name", "type": "string", "required": True},
        {"name": "city", "type": "string"},
    ],
}


@pytest.fixture
def people_dataset(db: None) -> Callable[..., Dataset]:
    """Apply the people schema with extra dataset options (``encoding``, ``detect_delimiter``…)."""

    def make(**options: Any) -> Dataset:
        return dataset_apply(spec=schema_parse({**json.loads(json.dumps(PEOPLE_SCHEMA)), **options})).dataset

    return make


class RedisServer:
    """A redis-server of the test's own on a free loopback port, which the test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen([*args, "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.02)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

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
def throttle_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the per-process state a previous test's Redis outage left in the throttles."""
    from api import throttling

    monkeypatch.setattr(throttling, "_outage", throttling._Outage())
    throttling._fallback.clear()


@pytest.fixture
def redis_cache(settings: Any, redis_server: RedisServer, throttle_state: None) -> RedisServer:
    """Django's default cache (so the API throttles) in the test's own Redis, as REDIS_URL sets it."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    return redis_server


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
