"""``redis_stream`` and ``nats_jetstream``: message brokers read by ``manage.py consume`` (ingestion.streams).

Credentials in a stream source's URL (``redis://:password@host:6379/0``,
``nats://user:password@host:4222``) are stored encrypted as its secret and
cut out of the URL that is shown (``ingestion.services.source_specs``).
"""

from __future__ import annotations

from .base import SourceKind

# What a consumer writes about a stream source: never set by a client.
STREAM_STATUS = ("position", "position_updated_at", "lag", "lag_checked_at", "consumer_error")

REDIS_STREAM = SourceKind(
    name="redis_stream",
    label="Redis Stream",
    fieldsets=(
        # "Request" as HTTP's: the console shows one URL field for every kind.
        ("Request", ("url",)),
        ("Stream", ("stream", "group")),
        ("Consumer", STREAM_STATUS),
    ),
    read_only=STREAM_STATUS,
    stream=True,
)

NATS_JETSTREAM = SourceKind(
    name="nats_jetstream",
    label="NATS JetStream",
    fieldsets=(
        ("Request", ("url",)),
        ("Stream", ("stream", "subject", "durable")),
        ("Consumer", STREAM_STATUS),
    ),
    read_only=STREAM_STATUS,
    stream=True,
)
