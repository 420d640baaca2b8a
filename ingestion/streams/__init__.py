"""Stream brokers: one adapter module per kind of stream source, registered here.

``ADAPTERS`` maps a source kind's name (ingestion.sourcekinds) to the class
that reads its messages; ``stream_config`` says what it connects to, with the
secret decrypted. The consumer that drives an adapter is
``processing.services.streams``. See ``base.py`` for what an adapter is and
how to add one.
"""

from __future__ import annotations

from .base import AdapterClass, BrokerUnavailable, Message, StreamAdapter, StreamConfig
from .nats_jetstream import NatsJetStreamAdapter, sequence_order
from .redis_streams import RedisStreamAdapter, entry_order

ADAPTERS: dict[str, AdapterClass] = {
    "redis_stream": RedisStreamAdapter,
    "nats_jetstream": NatsJetStreamAdapter,
}

# A message id as the text that sorts as the stream does, per kind.
ORDERS = {"redis_stream": entry_order, "nats_jetstream": sequence_order}

__all__ = [
    "ADAPTERS",
    "ORDERS",
    "BrokerUnavailable",
    "Message",
    "NatsJetStreamAdapter",
    "RedisStreamAdapter",
    "StreamAdapter",
    "StreamConfig",
]
