"""``manage.py consume`` and ``manage.py source_apply`` as an operator runs them.

The kill tests run the consumer in its own process (SIGKILL, then a restart),
which needs the test database on Postgres, as every test of another process does.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from ingestion.models import Dataset, Source
from ingestion.services.sources import source_stream_config
from processing.models import RejectedRow, Run, RunStatus, StreamMessage
from tests.cluster import ROOT, manage_py_env, wait_for
from tests.conftest import all_apps
from tests.records import records

from .conftest import REDIS_URL, JetStream, RedisStream, sale

in_another_process = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="the consumer runs in another process, which needs the test database on Postgres: set DATABASE_URL",
)


def apply(tmp_path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "source.json"
    path.write_text(json.dumps(spec))
    out = io.StringIO()
    call_command("source_apply", str(path), json=True, stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


@pytest.mark.django_db
def test_source_apply_keeps_url_credentials_encrypted_and_out_of_sight(
    sales: Dataset, tmp_path: Path, redis_stream: RedisStream
) -> None:
    spec = {
        "slug": "orders",
        "dataset": "sales",
        "kind": "redis_stream",
        "url": "redis://:s3cret@127.0.0.1:6379/13",
        "stream": redis_stream.key,
        "group": "g",
    }
    created = apply(tmp_path, spec)

    assert created["created"] is True and created["has_secret"] is True
    assert created["url"] == "redis://127.0.0.1:6379/13"
    source = Source.objects.get(name="orders")
    assert "s3cret" not in source.url and "s3cret" not in source.secret_encrypted
    assert source_stream_config(source, consumer="c", claim_idle=1).url == "redis://:s3cret@127.0.0.1:6379/13"

    updated = apply(tmp_path, {**spec, "url": "redis://127.0.0.1:6379/13", "group": "other"})
    assert updated["created"] is False and updated["changed"] == ["group"]
    assert Source.objects.get(name="orders").has_secret  # a URL without credentials keeps the stored ones


@pytest.mark.django_db
def test_source_apply_creates_nats_and_http_sources(sales: Dataset, tmp_path: Path) -> None:
    nats_spec = {
        "slug": "events",
        "dataset": "sales",
        "kind": "nats_jetstream",
        "url": "nats://alice:pw@127.0.0.1:4222",
        "stream": "EVENTS",
        "subject": "events.>",
        "durable": "dataflow",
    }
    assert apply(tmp_path, nats_spec)["url"] == "nats://alice@127.0.0.1:4222"
    http_spec = {"slug": "api", "dataset": "sales", "url": "http://127.0.0.1:9/items", "records_path": "items"}
    assert apply(tmp_path, http_spec)["kind"] == "http"
    assert Source.objects.get(name="api").records_path == "items"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dataset": "sales", "kind": "redis_stream"}, "Name the source"),
        ({"slug": "x", "dataset": "nope", "kind": "redis_stream"}, "no dataset 'nope'"),
        ({"slug": "x", "dataset": "sales", "kind": "kafka"}, "Unknown source kind 'kafka'"),
        ({"slug": "x", "dataset": "sales", "kind": "redis_stream", "url": "http://h/", "stream": "s"}, "redis"),
        ({"slug": "x", "dataset": "sales", "kind": "redis_stream", "url": REDIS_URL, "stream": "s"}, "group"),
        ({"slug": "x", "dataset": "sales", "kind": "redis_stream", "position": "1-0"}, "kept by the source"),
        ({"slug": "x", "dataset": "sales", "colour": "red"}, "Unknown source fields: colour"),
    ],
)
def test_source_apply_refuses_a_bad_spec_with_a_clear_reason(
    sales: Dataset, tmp_path: Path, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        apply(tmp_path, spec)
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_consume_prints_its_totals_as_json(redis_source: Source, redis_stream: RedisStream) -> None:
    redis_stream.add(sale(1), sale(2), "nope")
    out = io.StringIO()

    call_command("consume", "sales-stream", until_idle=0.5, json=True, stdout=out)

    totals = json.loads(out.getvalue())
    assert {k: totals[k] for k in ("read", "valid", "rejected", "runs")} == {
        "read": 3,
        "valid": 2,
        "rejected": 1,
        "runs": 1,
    }


@pytest.mark.django_db
def test_consume_refuses_a_source_that_is_not_a_stream(sales: Dataset, tmp_path: Path) -> None:
    apply(tmp_path, {"slug": "api", "dataset": "sales", "url": "http://127.0.0.1:9/items"})
    with pytest.raises(CommandError, match="not a stream"):
        call_command("consume", "api", until_idle=0.1)
    with pytest.raises(CommandError, match="no source 'missing'"):
        call_command("consume", "missing")


def _consumer(data_dir: Path, log: Path, *args: str, slug: str = "sales-stream", **env: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "consume", slug, *args],
            env={**manage_py_env(data_dir), "LOG_LEVEL": "WARNING", **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@in_another_process
@pytest.mark.django_db(transaction=True, available_apps=all_apps())
def test_consumers_killed_mid_stream_and_restarted_store_every_row_once(
    redis_source: Source, redis_stream: RedisStream, data_dir: Path, tmp_path: Path
) -> None:
    total_good, total_bad = 6000, 60
    rows: list[Any] = [sale(n) for n in range(1, total_good + 1)]
    for i in range(total_bad):
        rows.insert(i * 100 + 50, "[]")
    env = {"STREAM_BATCH_ROWS": "200", "STREAM_BATCH_SECONDS": "0.2", "STREAM_CLAIM_IDLE_SECONDS": "1"}
    log = tmp_path / "consumers.log"
    # Two consumers in one group, each killed (SIGKILL: nothing runs after) while messages flow.
    first = _consumer(data_dir, log, "--consumer", "a", **env)
    second = _consumer(data_dir, log, "--consumer", "b", **env)
    for start in range(0, len(rows), 500):
        redis_stream.add(*rows[start : start + 500])
        time.sleep(0.05)
    wait_for(lambda: StreamMessage.objects.count() > 1000, timeout=120, what="some batches committed")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    wait_for(lambda: StreamMessage.objects.count() > 3000, timeout=120, what="more batches committed")
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=10)
    assert redis_stream.pending() > 0 or StreamMessage.objects.count() < len(rows)

    # A new consumer claims what the dead ones left and reads the rest; SIGTERM ends it after its batch.
    third = _consumer(data_dir, log, "--consumer", "c", **env)
    wait_for(lambda: StreamMessage.objects.count() == len(rows), timeout=180, what="every message committed")
    wait_for(lambda: redis_stream.pending() == 0, timeout=30, what="every message acknowledged")
    os.killpg(third.pid, signal.SIGTERM)
    assert third.wait(timeout=30) == 0, log.read_text()

    assert records(Dataset.objects.get(slug="sales")).count() == total_good
    assert RejectedRow.objects.count() == total_bad
    assert RejectedRow.objects.values("message_id").distinct().count() == total_bad
    read = sum(Run.objects.filter(source=redis_source).values_list("rows_read", flat=True))
    assert read == len(rows)
    # The consumer that stopped on SIGTERM ended its run; the killed ones' runs wait for the heartbeat timeout.
    assert (
        Run.objects.filter(source=redis_source, status=RunStatus.SUCCEEDED).exists()
        or Run.objects.filter(source=redis_source, status=RunStatus.PARTIALLY_SUCCEEDED).exists()
    )


@in_another_process
@pytest.mark.django_db(transaction=True, available_apps=all_apps())
def test_jetstream_consumers_killed_mid_stream_and_restarted_store_every_row_once(
    nats_source: Source, jetstream: JetStream, data_dir: Path, tmp_path: Path
) -> None:
    total_good, total_bad = 3000, 30
    rows: list[Any] = [sale(n) for n in range(1, total_good + 1)]
    for i in range(total_bad):
        rows.insert(i * 100 + 50, b"not json")
    # Unacknowledged messages go to the next fetch after 2 s (the durable's ack wait).
    env = {"STREAM_BATCH_ROWS": "200", "STREAM_BATCH_SECONDS": "0.2", "STREAM_CLAIM_IDLE_SECONDS": "2"}
    log = tmp_path / "consumers.log"
    first = _consumer(data_dir, log, "--consumer", "a", slug="sales-nats", **env)
    second = _consumer(data_dir, log, "--consumer", "b", slug="sales-nats", **env)
    for start in range(0, len(rows), 300):
        jetstream.add(*rows[start : start + 300])
    wait_for(lambda: StreamMessage.objects.count() > 600, timeout=120, what="some batches committed")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    wait_for(lambda: StreamMessage.objects.count() > 1500, timeout=120, what="more batches committed")
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=10)

    third = _consumer(data_dir, log, "--consumer", "c", slug="sales-nats", **env)
    wait_for(lambda: StreamMessage.objects.count() == len(rows), timeout=180, what="every message committed")
    wait_for(
        lambda: Source.objects.filter(pk=nats_source.pk, lag=0).exists(), timeout=60, what="every message acknowledged"
    )
    os.killpg(third.pid, signal.SIGTERM)
    assert third.wait(timeout=30) == 0, log.read_text()

    assert records(Dataset.objects.get(slug="sales")).count() == total_good
    assert RejectedRow.objects.count() == total_bad
    assert sum(Run.objects.filter(source=nats_source).values_list("rows_read", flat=True)) == len(rows)
