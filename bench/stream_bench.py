"""Stream-source benchmark: Redis Streams and NATS JetStream into a dataset, with validation.

Usage::

    python bench/stream_bench.py [--messages 200000] [--rate 1000] [--seconds 20]
        [--database-url postgres://postgres@127.0.0.1:5432/dataflow_streambench]
        [--redis-url redis://127.0.0.1:6379/14] [--nats-url nats://127.0.0.1:4222]

For each broker, in one run, against the real servers:

1. **throughput**: ``--messages`` valid sales rows (the ingest benchmark's
   schema, every field validated) are put in the stream first, then
   ``manage.py consume SOURCE --until-idle 2`` reads them all; messages/s is
   the count over the consumer's wall time less the idle wait (target
   ≥ 20,000 msg/s on the 2-core machine);
2. **latency**: a consumer runs while a producer adds ``--rate`` messages a
   second for ``--seconds``; each message carries the time it was added,
   and each record's ``_updated_at`` (stamped in the batch's transaction,
   just before its commit) gives add → committed; p50, p99 and max are
   printed (target p99 < 2 s at 1,000 msg/s).

The consumer runs in its own process with the default batch settings
(``STREAM_BATCH_ROWS``, ``STREAM_BATCH_SECONDS``) unless they are set in the
environment. The benchmark drops and recreates its database; the streams it
makes are deleted at the end. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import MANAGE, database_fresh, dataset_apply  # a sibling script, not a package

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "bench" / "sales.schema.json"
PY = sys.executable
IDLE = 2.0


def row(n: int, sent: float | None = None) -> bytes:
    return json.dumps(
        {
            "id": f"S{n}",
            "timestamp": "2024-01-02T03:04:05Z",
            "category": "books" if n % 2 else "toys",
            "value": f"{n % 1000}.50",
            "quantity": n % 7,
            "customer_email": f"user{n}@example.com",
            "country": "us",
            "description": repr(sent) if sent is not None else "",
            "is_active": "yes",
        }
    ).encode()


class RedisSide:
    kind = "redis_stream"

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url)
        self.key = f"dataflow-bench:{uuid.uuid4().hex[:8]}"

    def spec(self, slug: str) -> dict[str, Any]:
        return {"slug": slug, "dataset": "sales", "kind": self.kind, "url": self.url, "stream": self.key, "group": "g"}

    def fill(self, first: int, count: int) -> None:
        for start in range(first, first + count, 5000):
            pipe = self.client.pipeline(transaction=False)
            for n in range(start, min(start + 5000, first + count)):
                pipe.xadd(self.key, {"data": row(n)})
            pipe.execute()

    def produce(self, first: int, rate: int, seconds: float) -> int:
        sent = 0
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate)
            pipe = self.client.pipeline(transaction=False)
            while sent < due:
                pipe.xadd(self.key, {"data": row(first + sent, time.time())})
                sent += 1
            pipe.execute()
            time.sleep(0.005)
        return sent

    def close(self) -> None:
        self.client.delete(self.key)
        self.client.close()


class NatsSide:
    kind = "nats_jetstream"

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"DFBENCH_{uuid.uuid4().hex[:8]}"
        self.subject = self.name.lower()
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        self.nc = await nats.connect(self.url)
        self.js = self.nc.jetstream()
        await self.js.add_stream(name=self.name, subjects=[self.subject])

    def spec(self, slug: str) -> dict[str, Any]:
        return {
            "slug": slug,
            "dataset": "sales",
            "kind": self.kind,
            "url": self.url,
            "stream": self.name,
            "subject": self.subject,
            "durable": "dataflow",
        }

    async def _publish(self, bodies: list[bytes]) -> None:
        # Async publishes, each awaited in bulk: one round trip per few thousand.
        futures = [await self.js.publish_async(self.subject, body) for body in bodies]
        await asyncio.gather(*futures)

    def fill(self, first: int, count: int) -> None:
        for start in range(first, first + count, 2000):
            bodies = [row(n) for n in range(start, min(start + 2000, first + count))]
            self.loop.run_until_complete(self._publish(bodies))

    def produce(self, first: int, rate: int, seconds: float) -> int:
        sent = 0
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate)
            bodies = []
            while sent < due:
                bodies.append(row(first + sent, time.time()))
                sent += 1
            if bodies:
                self.loop.run_until_complete(self._publish(bodies))
            time.sleep(0.005)
        return sent

    def close(self) -> None:
        self.loop.run_until_complete(self.js.delete_stream(self.name))
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


def apply(env: dict[str, str], spec: dict[str, Any]) -> None:
    subprocess.run(
        [*MANAGE, "source_apply", "-"],
        input=json.dumps(spec).encode(),
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def throughput(side: RedisSide | NatsSide, env: dict[str, str], messages: int) -> None:
    slug = f"bench-{side.kind.replace('_', '-')}-throughput"
    apply(env, side.spec(slug))
    fill_start = time.monotonic()
    side.fill(1, messages)
    fill_s = time.monotonic() - fill_start
    start = time.monotonic()
    out = subprocess.run(
        [*MANAGE, "consume", slug, "--until-idle", str(IDLE), "--json"],
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.monotonic() - start
    totals = json.loads(out.stdout)
    busy = max(wall - IDLE, 1e-6)
    print(
        f"{side.kind:15} throughput: {totals['read']:>8} messages ({totals['valid']} valid, {totals['rejected']} "
        f"rejected, {totals['batches']} batches) in {busy:6.2f} s = {totals['read'] / busy:>9,.0f} msg/s "
        f"(consumer process {wall:.2f} s incl. start-up and {IDLE:.0f} s idle; producing took {fill_s:.2f} s)"
    )


def latency(side: RedisSide | NatsSide, env: dict[str, str], rate: int, seconds: float, database_url: str) -> None:
    slug = f"bench-{side.kind.replace('_', '-')}-latency"
    apply(env, side.spec(slug))
    consumer = subprocess.Popen([*MANAGE, "consume", slug], env=env)
    time.sleep(3.0)  # start-up (Django, polars, the broker connection)
    # Keys of their own per broker, so each record's stamps are its own run's.
    first = 10_000_000 if side.kind == "redis_stream" else 20_000_000
    sent = side.produce(first, rate, seconds)
    time.sleep(IDLE + 1.0)
    consumer.terminate()
    consumer.wait(timeout=60)
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT description, _updated_at FROM datasets.sales WHERE _key BETWEEN %s AND %s AND description <> ''",
            [f"S{first}", f"S{first + 9_999_999}"],
        ).fetchall()
    delays = sorted(_delay(text, created) for text, created in found)
    if not delays:
        print(f"{side.kind:15} latency: no message committed")
        return
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(
        f"{side.kind:15} latency at {rate} msg/s for {seconds:.0f} s: {len(delays)}/{sent} committed; add → committed "
        f"p50 {statistics.median(delays):.3f} s, p99 {p99:.3f} s, max {delays[-1]:.3f} s"
    )


def _delay(text: str, created: datetime) -> float:
    return created.timestamp() - float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dataflow_streambench"),
        help="Postgres database to drop, create and use.",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--only", choices=["redis", "nats"], help="Measure one broker only.")
    args = parser.parse_args()

    env = database_fresh(args.database_url, ROOT / "bench" / "out" / "streams")
    dataset_apply(env, SCHEMA)
    print(
        f"batch: STREAM_BATCH_ROWS={env.get('STREAM_BATCH_ROWS', 'default')}, "
        f"STREAM_BATCH_SECONDS={env.get('STREAM_BATCH_SECONDS', 'default')}; {os.cpu_count()} CPUs"
    )
    sides: list[type[RedisSide] | type[NatsSide]] = []
    if args.only in (None, "redis"):
        sides.append(RedisSide)
    if args.only in (None, "nats"):
        sides.append(NatsSide)
    for make in sides:
        url = args.redis_url if make is RedisSide else args.nats_url
        side = make(url)
        try:
            throughput(side, env, args.messages)
        finally:
            side.close()
        side = make(url)
        try:
            latency(side, env, args.rate, args.seconds, args.database_url)
        finally:
            side.close()


if __name__ == "__main__":
    main()
