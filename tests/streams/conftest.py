"""Fixtures for stream sources: a fresh Redis stream and JetStream stream per test, on the real servers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import pytest
import redis

from ingestion.models import Dataset, Source
from ingestion.services.source_specs import source_apply

# A database number of its own, so the tests never meet other keys on the shared server.
REDIS_URL = "redis://127.0.0.1:6379/13"
NATS_URL = "nats://127.0.0.1:4222"


def sale(n: int, **changes: Any) -> dict[str, Any]:
    """A valid message for the sales dataset (tests/conftest.py)."""
    row: dict[str, Any] = {
        "id": f"S{n}",
        "timestamp": "2024-01-02T03:04:05Z",
        "category": "books",
        "value": f"{n}.50",
        "quantity": 1,
        "customer_email": f"u{n}@example.com",
        "country": "us",
        "is_active": True,
    }
    row.update(changes)
    return row


class RedisStream:
    def __init__(self) -> None:
        self.client = redis.Redis.from_url(REDIS_URL)
        self.key = f"dataflow-test:{uuid.uuid4().hex}"
        self.group = "dataflow"

    def add(self, *rows: dict[str, Any] | bytes | str, field: str = "data") -> list[str]:
        ids = []
        pipe = self.client.pipeline(transaction=False)
        for row in rows:
            body = json.dumps(row) if isinstance(row, dict) else row
            pipe.xadd(self.key, {field: body})
        for found in pipe.execute():
            ids.append(found.decode())
        return ids

    def pending(self) -> int:
        try:
            return int(self.client.xpending(self.key, self.group)["pending"])
        except redis.ResponseError:
            return 0

    def delete(self) -> None:
        self.client.delete(self.key)
        self.client.close()


@pytest.fixture
def redis_stream() -> Iterator[RedisStream]:
    stream = RedisStream()
    yield stream
    stream.delete()


@pytest.fixture
def redis_source(sales: Dataset, redis_stream: RedisStream) -> Source:
    spec = {
        "slug": "sales-stream",
        "dataset": "sales",
        "kind": "redis_stream",
        "url": REDIS_URL,
        "stream": redis_stream.key,
        "group": redis_stream.group,
    }
    return source_apply(spec=spec).source


class JetStream:
    def __init__(self) -> None:
        self.name = f"DFTEST_{uuid.uuid4().hex[:12]}"
        self.subject = f"dftest.{self.name.lower()}"
        self.durable = "dataflow"
        self._run(self._create())

    @staticmethod
    def _run(coro: Any) -> Any:
        return asyncio.run(coro)

    async def _create(self) -> None:
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().add_stream(name=self.name, subjects=[self.subject])
        await nc.close()

    def add(self, *rows: dict[str, Any] | bytes | str) -> list[int]:
        async def publish() -> list[int]:
            nc = await nats.connect(NATS_URL)
            js = nc.jetstream()
            seqs = []
            for row in rows:
                body = json.dumps(row).encode() if isinstance(row, dict) else row
                ack = await js.publish(self.subject, body if isinstance(body, bytes) else body.encode())
                seqs.append(ack.seq)
            await nc.close()
            return seqs

        return list(self._run(publish()))

    def delete(self) -> None:
        async def drop() -> None:
            nc = await nats.connect(NATS_URL)
            await nc.jetstream().delete_stream(self.name)
            await nc.close()

        self._run(drop())


@pytest.fixture
def jetstream() -> Iterator[JetStream]:
    stream = JetStream()
    yield stream
    stream.delete()


@pytest.fixture
def nats_source(sales: Dataset, jetstream: JetStream) -> Source:
    spec = {
        "slug": "sales-nats",
        "dataset": "sales",
        "kind": "nats_jetstream",
        "url": NATS_URL,
        "stream": jetstream.name,
        "subject": jetstream.subject,
        "durable": jetstream.durable,
    }
    return source_apply(spec=spec).source
