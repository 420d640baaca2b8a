"""Redis Streams: a consumer group read with XREADGROUP, acknowledged with XACK, XAUTOCLAIM for the dead.

Each entry's field ``data`` holds one JSON object (one row). A consumer
first reads its own pending entries (left by a crash of a consumer of the
same name), then entries other consumers left unacknowledged for longer
than ``claim_idle`` (XAUTOCLAIM), then new entries (``>``).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from typing import Any

import redis

from .base import BrokerUnavailable, Message, StreamConfig, order_text

DATA_FIELD = b"data"
_ID_RE = re.compile(r"^(\d+)-(\d+)$")
_CLAIM_EVERY = 1.0  # seconds between looks for a dead consumer's entries


def entry_order(entry_id: str) -> str:
    """A Redis entry id (``<ms>-<seq>``) as text that sorts as the stream does."""
    match = _ID_RE.match(entry_id)
    if match is None:
        raise ValueError(f"not a Redis stream entry id: {entry_id!r}")
    return order_text(int(match.group(1)), int(match.group(2)))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _message(entry_id: Any, fields: dict[bytes, bytes] | None, *, redelivered: bool = True) -> Message:
    mid = _text(entry_id)
    order = entry_order(mid)
    if fields is None:
        # XAUTOCLAIM / XREADGROUP 0 give an entry deleted from the stream (XDEL, XTRIM) without fields.
        return Message(mid, order, None, "the entry was deleted from the stream before it was read")
    body = fields.get(DATA_FIELD)
    if body is None:
        names = ", ".join(sorted(_text(k) for k in fields)) or "none"
        reason = f"the entry has no field 'data' (its fields: {names})"
        return Message(mid, order, None, reason, redelivered=redelivered)
    return Message(mid, order, body, redelivered=redelivered)


class RedisStreamAdapter:
    """One consumer of one consumer group of one Redis stream."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.stream = config.stream
        self.group = config.group
        self.consumer = config.consumer
        # Our own pending entries first (a restart after a crash), from the start of the stream.
        self._own_from: str | None = "0"
        self._claim_from = "0-0"
        self._claimed_at = 0.0
        try:
            # Any: redis-py types every reply as possibly awaitable (its asyncio client shares the stubs).
            self.client: Any = redis.Redis.from_url(
                config.url, socket_connect_timeout=config.connect_timeout, socket_keepalive=True
            )
            self._group_create()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"Redis: {exc}") from None

    def _group_create(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, *, max_messages: int, timeout: float) -> list[Message]:
        try:
            if self._own_from is not None:
                got = self._read_own(max_messages)
                if got:
                    return got
            if time.monotonic() - self._claimed_at >= _CLAIM_EVERY:
                got = self._claim(max_messages)
                if got:
                    return got
            block = max(1, int(timeout * 1000))
            answer = self.client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=max_messages, block=block
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                # The stream or group was deleted: make them again and carry on.
                self._group_create()
                return []
            raise BrokerUnavailable(f"Redis: {exc}") from None
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"Redis: {exc}") from None
        # ">" gives entries never delivered to this group before.
        return [_message(mid, fields, redelivered=False) for _, entries in answer or [] for mid, fields in entries]

    def _read_own(self, max_messages: int) -> list[Message]:
        assert self._own_from is not None  # only called while reading our own pending entries
        answer = self.client.xreadgroup(self.group, self.consumer, {self.stream: self._own_from}, count=max_messages)
        entries = [e for _, es in answer or [] for e in es]
        if not entries:
            self._own_from = None
            return []
        self._own_from = _text(entries[-1][0])
        return [_message(mid, fields) for mid, fields in entries]

    def _claim(self, max_messages: int) -> list[Message]:
        self._claimed_at = time.monotonic()
        answer = self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=int(self.config.claim_idle * 1000),
            start_id=self._claim_from,
            count=max_messages,
        )
        next_id, entries = _text(answer[0]), answer[1]
        self._claim_from = next_id if next_id != "0-0" else "0-0"
        # redis-py gives deleted entries as None (Redis 7 lists their ids apart: they are gone, nothing to do).
        return [_message(mid, fields) for mid, fields in (e for e in entries if e is not None)]

    def ack(self, messages: Sequence[Message]) -> None:
        ids = [m.id for m in messages]
        try:
            for i in range(0, len(ids), 10_000):
                self.client.xack(self.stream, self.group, *ids[i : i + 10_000])
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"Redis: {exc}") from None

    def _group_info(self) -> dict[str, Any]:
        for group in self.client.xinfo_groups(self.stream):
            if _text(group.get("name")) == self.group:
                return dict(group)
        return {}

    def lag(self) -> int:
        try:
            info = self._group_info()
            pending = int(info.get("pending") or 0)
            lag = info.get("lag")
            if lag is None:
                # Redis < 7 or a trimmed stream: count what follows the last delivered id.
                last = _text(info.get("last-delivered-id") or "0-0")
                lag = len(self.client.xrange(self.stream, min=f"({last}", count=1_000_000))
            return pending + int(lag)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"Redis: {exc}") from None

    def floor(self) -> str | None:
        try:
            summary = self.client.xpending(self.stream, self.group)
            if summary and summary.get("pending"):
                return entry_order(_text(summary["min"]))
            info = self._group_info()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"Redis: {exc}") from None
        last = info.get("last-delivered-id")
        return entry_order(_text(last)) if last else None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # letting go of a broken connection
            self.client.close()
