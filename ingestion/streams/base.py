"""What a stream adapter is: a reader of one source's messages, acknowledged only when told.

A consumer (``processing.services.streams``) asks its adapter for a
micro-batch, commits what the messages say, then acknowledges them: a
message is never acknowledged before the transaction that stored it has
committed, so a crash in between only means it is delivered again.

Adding a broker (Kafka over confluent-kafka, say) is one module in this
package that defines a ``StreamAdapter`` and registers it in ``ADAPTERS``
(``ingestion/streams/__init__.py``), plus a source kind in
``ingestion/sourcekinds/streams.py``: the consumer, its delivery rules, the
commands, lag and health need nothing new. Kafka's partition offsets would
give ``order`` as ``"<partition>:<offset>"`` zero-padded, and ``floor`` as
the committed offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One message as the broker delivered it.

    ``id`` is the broker's name for it (a Redis entry id, a JetStream stream
    sequence) and ``order`` the same as text that sorts as the stream does.
    ``body`` is the JSON text of the row; ``None`` when the message has no
    such part, ``error`` then saying why (the message becomes a rejected row).
    """

    id: str
    order: str
    body: bytes | None
    error: str = ""
    handle: object = None  # what the adapter needs to acknowledge it
    # False only when the broker says this is the message's first delivery (so it cannot
    # have been committed before); the consumer then skips looking it up.
    redelivered: bool = True


@dataclass(frozen=True)
class StreamConfig:
    """Where one source's messages are and who reads them (credentials included: never log it)."""

    url: str
    stream: str
    group: str = ""
    subject: str = ""
    durable: str = ""
    consumer: str = "consumer"
    # A message left unacknowledged this long by its consumer is given to another.
    claim_idle: float = 60.0
    connect_timeout: float = 5.0


class BrokerUnavailable(Exception):
    """The broker cannot be reached or refused the request; the consumer retries with backoff."""


class StreamAdapter(Protocol):
    """A connection to one source's stream. Every method raises ``BrokerUnavailable`` on broker trouble."""

    def read(self, *, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds for the first.

        Messages an earlier, dead, consumer left unacknowledged come first.
        """

    def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge messages whose batch has committed."""

    def lag(self) -> int:
        """Messages waiting for this source: not yet delivered, or delivered and not acknowledged."""

    def floor(self) -> str | None:
        """The ``order`` below which no message can be delivered again (None: unknown)."""

    def close(self) -> None:
        """Let the connection go (never raises)."""


class AdapterClass(Protocol):
    def __call__(self, config: StreamConfig) -> StreamAdapter: ...


def order_text(*numbers: int) -> str:
    """Numbers as text that sorts as they do (each zero-padded to 20 digits), joined by ``-``."""
    return "-".join(f"{n:020d}" for n in numbers)
