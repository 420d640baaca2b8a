"""NATS JetStream: a durable pull consumer, each message acknowledged once its batch has committed.

Each message body is one JSON object (one row). JetStream gives a message
that stays unacknowledged for the consumer's ack wait (``claim_idle``) to
the next fetch, whichever process makes it: that is how a dead consumer's
messages reach a live one.

nats-py is asynchronous; this adapter keeps an event loop of its own and
runs each call to the end, so the consumer stays plain synchronous code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import nats
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from .base import BrokerUnavailable, Message, StreamConfig, order_text

T = TypeVar("T")


def sequence_order(sequence: str) -> str:
    """A stream sequence as text that sorts as the stream does."""
    return order_text(int(sequence))


async def _quiet(error: Exception) -> None:
    """nats-py reports connection errors here as well as raising them; the raise is what counts."""


class NatsJetStreamAdapter:
    """One process fetching from one durable pull consumer of one JetStream stream."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.nc: Any = None
        try:
            self._run(self._connect())
        except BaseException:
            self.close()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return self.loop.run_until_complete(coro)
        except (TimeoutError, NatsError, OSError) as exc:
            raise BrokerUnavailable(f"NATS: {type(exc).__name__}: {exc}") from None

    async def _connect(self) -> None:
        config = self.config
        # One try (nats-py reads max_reconnect_attempts=0 as "forever"): the consumer's
        # backoff retries, and says why in between.
        self.nc = await asyncio.wait_for(
            nats.connect(
                config.url,
                connect_timeout=config.connect_timeout,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                name=config.consumer,
                error_cb=_quiet,
            ),
            timeout=config.connect_timeout * 2,
        )
        self.js = self.nc.jetstream()
        try:
            await self.js.stream_info(config.stream)
        except NotFoundError:
            raise BrokerUnavailable(f"NATS: the stream {config.stream!r} does not exist") from None
        self.sub = await self.js.pull_subscribe(
            config.subject,
            durable=config.durable,
            stream=config.stream,
            config=ConsumerConfig(
                durable_name=config.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=config.claim_idle,
                # Room for a whole batch per consumer process, and a few processes.
                max_ack_pending=100_000,
            ),
        )

    def read(self, *, max_messages: int, timeout: float) -> list[Message]:
        if self.nc is None or not self.nc.is_connected:
            raise BrokerUnavailable("NATS: the connection was lost")
        try:
            msgs = self.loop.run_until_complete(self.sub.fetch(batch=max_messages, timeout=max(timeout, 0.05)))
        except (TimeoutError, NatsTimeout):
            # nats-py raises either when a fetch expires with nothing to give.
            if self.nc.is_connected:
                return []  # nothing arrived in time
            raise BrokerUnavailable("NATS: the connection was lost") from None
        except (NatsError, OSError) as exc:
            raise BrokerUnavailable(f"NATS: {type(exc).__name__}: {exc}") from None
        return [self._message(m) for m in msgs]

    @staticmethod
    def _message(msg: Any) -> Message:
        seq = str(msg.metadata.sequence.stream)
        first = msg.metadata.num_delivered == 1
        return Message(seq, sequence_order(seq), msg.data, handle=msg, redelivered=not first)

    def ack(self, messages: Sequence[Message]) -> None:
        async def ack_all() -> None:
            for m in messages:
                await m.handle.ack()  # type: ignore[attr-defined]
            # Acks are published without an answer: the flush makes sure the server has them.
            await self.nc.flush(timeout=self.config.connect_timeout)

        self._run(ack_all())

    def _info(self) -> Any:
        return self._run(self.js.consumer_info(self.config.stream, self.config.durable))

    def lag(self) -> int:
        info = self._info()
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    def floor(self) -> str | None:
        info = self._info()
        acked = info.ack_floor.stream_seq if info.ack_floor else 0
        return sequence_order(str(int(acked or 0) + 1))

    def close(self) -> None:
        try:
            if self.nc is not None and not self.nc.is_closed:
                self.loop.run_until_complete(asyncio.wait_for(self.nc.close(), 5))
        # Letting go of a broken connection: nothing to report.
        except Exception:  # noqa: S110  # nosec B110
            pass
        finally:
            self.loop.close()
