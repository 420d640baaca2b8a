"""A consumer whose broker restarts under it: it says so on the source, waits, reconnects and loses nothing."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion.models import Dataset, Source
from ingestion.services.source_specs import source_apply
from processing.models import StreamMessage
from processing.services.streams import ConsumeTotals, stream_consume
from tests.conftest import RedisServer
from tests.records import records

from .conftest import RedisStream, sale

pytestmark = pytest.mark.django_db


class DurableRedis(RedisServer):
    """A private redis-server that keeps every write on disk (AOF, fsync always), as a broker in production does."""

    def start(self) -> DurableRedis:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)]
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except Exception:
                time.sleep(0.02)
        raise AssertionError(f"redis-server did not start on port {self.port}")


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = DurableRedis(tmp_path).start()
    yield server
    server.stop()


def test_a_broker_restart_mid_stream_loses_and_doubles_nothing(
    sales: Dataset, durable_redis: DurableRedis, settings: Any
) -> None:
    settings.STREAMS = {**settings.STREAMS, "BATCH_ROWS": 10, "BATCH_SECONDS": 0.2, "BACKOFF_MAX": 0.5}
    stream = RedisStream()
    stream.client = durable_redis.client()
    url = durable_redis.url
    spec = {"slug": "s", "dataset": "sales", "kind": "redis_stream", "url": url, "stream": "orders", "group": "g"}
    source = source_apply(spec=spec).source
    stream.key, stream.group = "orders", "g"
    stream.add(*(sale(n) for n in range(1, 31)))
    seen: dict[str, Any] = {"phase": 0, "batches": 0, "read": 0, "errors": []}
    deadline = time.monotonic() + 60

    def on_batch(totals: ConsumeTotals) -> None:
        seen["batches"], seen["read"] = totals.batches, totals.read

    def should_stop() -> bool:
        if seen["phase"] == 0 and seen["batches"] >= 1:
            durable_redis.stop()  # between two batches: the first is committed and acknowledged
            seen["phase"] = 1
        elif seen["phase"] == 1:
            error = Source.objects.filter(pk=source.pk).values_list("consumer_error", flat=True).get()
            if error:
                seen["errors"].append(error)
                durable_redis.start()
                stream.client = durable_redis.client()
                stream.add(*(sale(n) for n in range(31, 51)))
                seen["phase"] = 2
        elif seen["phase"] == 2 and seen["read"] >= 50:
            return True
        return time.monotonic() > deadline

    totals = stream_consume(source=source, should_stop=should_stop, on_batch=on_batch)

    assert seen["phase"] == 2 and "Redis" in seen["errors"][0]
    assert totals.read == 50 and totals.valid == 50 and totals.redelivered == 0
    assert records(sales).count() == 50
    assert StreamMessage.objects.filter(source=source).count() == 50
    assert stream.pending() == 0
    source.refresh_from_db()
    assert source.consumer_error == ""
