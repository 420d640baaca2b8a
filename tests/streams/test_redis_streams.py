"""Redis Streams into a dataset against the real Redis server: every valid row once, every bad row rejected once."""

from __future__ import annotations

from typing import Any

import pytest

from ingestion.models import Dataset, Source
from ingestion.services.sources import source_stream_config
from ingestion.streams import RedisStreamAdapter
from processing.models import RejectedRow, Run, RunStatus, RunTrigger, StreamMessage
from processing.services.streams import batch_commit, stream_consume, stream_window_close, stream_window_open
from tests.records import records as dataset_records

from .conftest import RedisStream, sale

pytestmark = pytest.mark.django_db


def records(dataset: str = "sales") -> dict[str, dict[str, Any]]:
    """The dataset's records by key, as their field values."""
    return {r.key: r.data for r in dataset_records(Dataset.objects.get(slug=dataset))}


def consume(source: Source, **options: Any) -> Any:
    source.refresh_from_db()
    return stream_consume(source=source, until_idle=options.pop("until_idle", 0.3), **options)


def test_messages_become_records_and_are_acknowledged(redis_source: Source, redis_stream: RedisStream) -> None:
    ids = redis_stream.add(*(sale(n) for n in range(1, 51)))

    totals = consume(redis_source)

    assert (totals.read, totals.valid, totals.rejected, totals.runs) == (50, 50, 0, 1)
    stored = records()
    assert len(stored) == 50
    assert str(stored["S7"]["value"]) == "7.50"
    assert redis_stream.pending() == 0
    redis_source.refresh_from_db()
    assert redis_source.position == ids[-1]
    assert redis_source.lag == 0
    run = Run.objects.get(pk=totals.run_ids[0])
    assert run.trigger == RunTrigger.STREAM and run.status == RunStatus.SUCCEEDED
    assert (run.rows_read, run.rows_inserted) == (50, 50)
    # Lineage: each record's message, with the run that loaded it.
    assert StreamMessage.objects.filter(source=redis_source, key="S7").get().message_id == ids[6]


def test_bad_messages_are_rejected_with_their_reason_and_message_id(
    redis_source: Source, redis_stream: RedisStream
) -> None:
    good = redis_stream.add(sale(1))
    bad_json = redis_stream.add("{not json")
    array = redis_stream.add("[1, 2]")
    no_data = redis_stream.add(sale(2), field="payload")
    invalid = redis_stream.add(sale(3, quantity="many"))
    not_utf8 = redis_stream.add(b"\xff\xfe{}")

    totals = consume(redis_source)

    assert (totals.read, totals.valid, totals.rejected) == (6, 1, 5)
    assert list(records()) == ["S1"]
    rejected = {r.message_id: r for r in RejectedRow.objects.all()}
    assert set(rejected) == {*bad_json, *array, *no_data, *invalid, *not_utf8}
    assert "not valid JSON" in rejected[bad_json[0]].errors["__row__"][0]
    assert rejected[bad_json[0]].raw == {"__message__": "{not json"}
    assert "one JSON object, this one holds an array" in rejected[array[0]].errors["__row__"][0]
    assert "no field 'data' (its fields: payload)" in rejected[no_data[0]].errors["__row__"][0]
    assert "quantity" in rejected[invalid[0]].errors
    assert "not UTF-8" in rejected[not_utf8[0]].errors["__row__"][0]
    assert good and redis_stream.pending() == 0
    run = Run.objects.get(pk=totals.run_ids[0])
    assert run.status == RunStatus.PARTIALLY_SUCCEEDED and run.rows_rejected == 5


def _adapter(source: Source, consumer: str, claim_idle: float = 60.0) -> RedisStreamAdapter:
    source.refresh_from_db()
    return RedisStreamAdapter(source_stream_config(source, consumer=consumer, claim_idle=claim_idle))


def test_a_batch_committed_but_never_acknowledged_changes_nothing_when_delivered_again(
    redis_source: Source, redis_stream: RedisStream, settings: Any
) -> None:
    redis_stream.add(*(sale(n) for n in range(1, 11)), "[]", sale(3, quantity=9))
    # A consumer commits a batch and dies before acknowledging it.
    dying = _adapter(redis_source, "dying")
    messages = dying.read(max_messages=100, timeout=0.5)
    window = stream_window_open(redis_source)
    outcome = batch_commit(redis_source, window, messages)
    stream_window_close(window)
    dying.close()
    assert (outcome.read, outcome.valid, outcome.rejected) == (12, 11, 1)
    before = records()
    assert redis_stream.pending() == 12

    # The next consumer claims them (XAUTOCLAIM) once idle long enough.
    settings.STREAMS = {**settings.STREAMS, "CLAIM_IDLE_SECONDS": 0.1}
    totals = consume(redis_source, consumer="next", until_idle=1.5)

    assert (totals.read, totals.redelivered, totals.valid, totals.rejected) == (12, 12, 0, 0)
    assert records() == before
    assert before["S3"]["quantity"] == 9  # the later message for S3 won
    assert RejectedRow.objects.count() == 1
    assert StreamMessage.objects.filter(source=redis_source).count() == 12
    assert redis_stream.pending() == 0


def test_a_batch_read_but_never_committed_is_claimed_by_the_next_consumer(
    redis_source: Source, redis_stream: RedisStream, settings: Any
) -> None:
    redis_stream.add(*(sale(n) for n in range(1, 21)))
    dying = _adapter(redis_source, "dying")
    assert len(dying.read(max_messages=100, timeout=0.5)) == 20
    dying.close()

    settings.STREAMS = {**settings.STREAMS, "CLAIM_IDLE_SECONDS": 0.1}
    totals = consume(redis_source, consumer="next", until_idle=1.5)

    assert (totals.read, totals.valid, totals.redelivered) == (20, 20, 0)
    assert len(records()) == 20
    assert redis_stream.pending() == 0


def test_a_consumer_restarted_under_its_name_reads_its_own_pending_first(
    redis_source: Source, redis_stream: RedisStream
) -> None:
    redis_stream.add(*(sale(n) for n in range(1, 6)))
    crashed = _adapter(redis_source, "worker-1")
    assert len(crashed.read(max_messages=100, timeout=0.5)) == 5
    crashed.close()

    totals = consume(redis_source, consumer="worker-1")

    assert (totals.read, totals.valid) == (5, 5)
    assert len(records()) == 5


def test_two_consumers_in_one_group_store_each_row_once_and_the_latest_message_wins(
    redis_source: Source, redis_stream: RedisStream, settings: Any
) -> None:
    settings.STREAMS = {**settings.STREAMS, "BATCH_ROWS": 7}
    redis_stream.add(*(sale(n) for n in range(1, 41)))
    first, second = _adapter(redis_source, "a"), _adapter(redis_source, "b")
    batch_a = first.read(max_messages=7, timeout=0.5)
    batch_b = second.read(max_messages=7, timeout=0.5)
    # The same key again, later in the stream: b holds it and commits before a.
    redis_stream.add(sale(1, quantity=5))
    later = second.read(max_messages=7, timeout=0.5)
    window_b = stream_window_open(redis_source)
    batch_commit(redis_source, window_b, batch_b + later)
    second.ack(batch_b + later)
    window_a = stream_window_open(redis_source)
    batch_commit(redis_source, window_a, batch_a)  # S1's older message, committed after its newer one
    first.ack(batch_a)
    for window in (window_a, window_b):
        stream_window_close(window)
    first.close()
    second.close()
    consume(redis_source, consumer="a")
    consume(redis_source, consumer="b")

    stored = records()
    assert len(stored) == 40
    assert stored["S1"]["quantity"] == 5
    assert StreamMessage.objects.filter(source=redis_source).count() == 41
    assert redis_stream.pending() == 0
    assert sum(Run.objects.filter(source=redis_source).values_list("rows_read", flat=True)) == 41


def test_a_key_sent_twice_in_one_batch_keeps_its_last_message(redis_source: Source, redis_stream: RedisStream) -> None:
    redis_stream.add(sale(1, quantity=1), sale(1, quantity=2), sale(2))

    totals = consume(redis_source)

    assert totals.valid == 3
    assert records()["S1"]["quantity"] == 2
    run = Run.objects.get(pk=totals.run_ids[0])
    assert run.summary["stream"]["superseded"] == 1


def test_an_unreachable_broker_shows_on_the_source_and_the_consumer_gives_up_when_idle(
    redis_source: Source,
) -> None:
    Source.objects.filter(pk=redis_source.pk).update(url="redis://127.0.0.1:1/0")

    totals = consume(redis_source, until_idle=1.0)

    assert totals.read == 0
    redis_source.refresh_from_db()
    assert "Redis" in redis_source.consumer_error
