"""NATS JetStream into a dataset against the real nats-server: every valid row once, every bad row rejected once."""

from __future__ import annotations

from typing import Any

import pytest

from ingestion.models import Dataset, Source
from ingestion.services.sources import source_stream_config
from ingestion.streams import NatsJetStreamAdapter
from processing.models import RejectedRow, Run, RunStatus, StreamMessage
from processing.services.streams import batch_commit, stream_consume, stream_window_close, stream_window_open
from tests.records import records as dataset_records

from .conftest import JetStream, sale

pytestmark = pytest.mark.django_db


def records() -> dict[str, dict[str, Any]]:
    return {r.key: r.data for r in dataset_records(Dataset.objects.get(slug="sales"))}


def consume(source: Source, **options: Any) -> Any:
    source.refresh_from_db()
    return stream_consume(source=source, until_idle=options.pop("until_idle", 0.5), **options)


def test_messages_become_records_and_bad_ones_are_rejected(nats_source: Source, jetstream: JetStream) -> None:
    seqs = jetstream.add(*(sale(n) for n in range(1, 31)), b"not json", b"[1]", sale(31, country="USA"))

    totals = consume(nats_source)

    assert (totals.read, totals.valid, totals.rejected) == (33, 30, 3)
    assert len(records()) == 30
    rejected = {r.message_id: r.errors for r in RejectedRow.objects.all()}
    assert set(rejected) == {str(s) for s in seqs[-3:]}
    assert "not valid JSON" in rejected[str(seqs[30])]["__row__"][0]
    assert "country" in rejected[str(seqs[32])]
    nats_source.refresh_from_db()
    assert nats_source.position == str(seqs[-1])
    assert nats_source.lag == 0
    assert Run.objects.get(pk=totals.run_ids[0]).status == RunStatus.PARTIALLY_SUCCEEDED


def test_a_committed_batch_delivered_again_after_the_ack_wait_changes_nothing(
    nats_source: Source, jetstream: JetStream, settings: Any
) -> None:
    settings.STREAMS = {**settings.STREAMS, "CLAIM_IDLE_SECONDS": 1.0}
    jetstream.add(*(sale(n) for n in range(1, 11)), b"{")
    nats_source.refresh_from_db()
    # A consumer commits its batch and dies before acknowledging it.
    dying = NatsJetStreamAdapter(source_stream_config(nats_source, consumer="dying", claim_idle=1.0))
    messages = dying.read(max_messages=100, timeout=2)
    assert len(messages) == 11
    window = stream_window_open(nats_source)
    batch_commit(nats_source, window, messages)
    stream_window_close(window)
    dying.close()
    before = records()

    totals = consume(nats_source, until_idle=3.0)

    assert (totals.read, totals.redelivered, totals.valid, totals.rejected) == (11, 11, 0, 0)
    assert records() == before and len(before) == 10
    assert RejectedRow.objects.count() == 1
    assert StreamMessage.objects.filter(source=nats_source).count() == 11
    nats_source.refresh_from_db()
    assert nats_source.lag == 0


def test_an_unreachable_nats_server_shows_on_the_source(nats_source: Source) -> None:
    Source.objects.filter(pk=nats_source.pk).update(url="nats://127.0.0.1:1")

    totals = consume(nats_source, until_idle=1.0)

    assert totals.read == 0
    nats_source.refresh_from_db()
    assert "NATS" in nats_source.consumer_error
