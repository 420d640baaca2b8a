"""Consuming stream sources: micro-batches from a broker, validated and loaded as files are.

``stream_consume`` is the whole of it, as ``manage.py consume SLUG`` runs it:

1. **read** a micro-batch from the source's adapter (``ingestion.streams``):
   at most ``STREAMS["BATCH_ROWS"]`` messages, waiting at most
   ``STREAMS["BATCH_SECONDS"]``.
2. **parse** each message into a row (one JSON object, keys = column names);
   any other shape is a rejected row with its reason.
3. **validate** the rows exactly as a file's (``pipeline.chunks.chunk_validate``).
4. **commit**, in one transaction holding the source's row lock: leave out
   messages already committed (``StreamMessage``: a redelivery after a crash
   changes nothing) and rows for keys a later message already wrote (two
   consumers may commit out of stream order); upsert the records
   (``pipeline.load.records_load``), keep the rejected rows with their
   message ids, record every message in ``StreamMessage``, add to the run's
   counters and checkpoint, and move the source's ``position``.
5. **acknowledge** the batch to the broker, only now that it is committed.

A run covers ``STREAMS["RUN_WINDOW_SECONDS"]`` of batches, so run history
stays readable. A broker that cannot be reached is retried with growing
waits (at most ``STREAMS["BACKOFF_MAX"]``), and the source shows why in its
``consumer_error`` (and so in ``/health/``) until it can be reached again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from core.commands import validation_message
from ingestion import jsontext
from ingestion.models import Dataset, SchemaVersion, Source
from ingestion.reader import RawRow, json_text
from ingestion.schema import SchemaSpec
from ingestion.selectors import schema_spec
from ingestion.services.datasets import dataset_schema_require
from ingestion.services.sources import source_stream_config
from ingestion.sourcekinds import stream_kinds
from ingestion.streams import ADAPTERS, ORDERS, BrokerUnavailable, Message, StreamAdapter

from .. import lifecycle
from ..models import RejectedRow, Run, RunStatus, RunTrigger, StreamMessage
from ..pipeline.chunks import chunk_validate
from ..pipeline.load import records_load
from ..pipeline.validate import RejectedValues, RowValidator, ValidRow, columns_map, printable
from ..record_indexes import record_indexes_sync
from ..record_tables import record_table_create, table_exists

logger = logging.getLogger(__name__)

# Seconds between two writes of a source's lag (and of an idle run's heartbeat).
STATUS_EVERY = 2.0
# Seconds between two prunings of the committed-messages ledger.
PRUNE_EVERY = 30.0
_IN_BATCH = 900  # values per IN (...) query (SQLite's parameter limit)


@dataclass
class ConsumeTotals:
    """What one ``stream_consume`` did: messages read (redeliveries of committed ones included)."""

    read: int = 0
    valid: int = 0
    rejected: int = 0
    runs: int = 0
    batches: int = 0
    redelivered: int = 0
    run_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StreamSourceError(ValueError):
    """The source cannot be consumed (not a stream, its dataset has no schema)."""


def _key_norm(key: str) -> str:
    # As NDJSON keys are matched to headers (ingestion.reader): case and spaces aside.
    return key.strip().lstrip("\ufeff").casefold()


def _excerpt(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class StreamWindow:
    """The run a consumer is adding batches to, and the schema it validates them with."""

    def __init__(self, run: Run, spec: SchemaSpec) -> None:
        self.run = run
        self.spec = spec
        header = [f.headers[0] for f in spec.fields]
        self.validator = RowValidator(
            spec,
            columns_map(spec, header),
            settings.DATAFLOW["MAX_FIELD_SIZE"],
            with_json=connection.vendor != "postgresql",
        )
        self.width = len(header)
        # Every spelling a message may use for a field (its name, source and aliases).
        self.positions = {_key_norm(h): i for i, f in enumerate(spec.fields) for h in (f.name, *f.headers)}
        self.spelled: dict[str, int | None] = {}  # messages repeat a few spellings: normalise each once
        self.started = time.monotonic()

    def row(self, line: int, message: Message) -> tuple[RawRow, str]:
        """The message as a row of values in header order, or a row with the reason it is not one.

        Also gives the message's text (for a rejected row's raw value).
        """
        if message.body is None:
            return RawRow(line, [], message.error), ""
        try:
            text = message.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = message.body[:500].decode("utf-8", "replace")
            return RawRow(line, [], f"the message is not UTF-8 text (byte {exc.start}: {exc.reason})"), shown
        try:
            obj = jsontext.loads(text)
        except RecursionError:
            return RawRow(line, [], "the message is not valid JSON: nesting too deep"), text
        except ValueError as exc:
            return RawRow(line, [], f"the message is not valid JSON ({exc.args[0] if exc.args else exc})"), text
        if not isinstance(obj, dict):
            kind = {list: "an array", bool: "a boolean", jsontext.JsonNumber: "a number"}.get(type(obj), "a string")
            return RawRow(line, [], f"a message must be one JSON object, this one holds {kind}"), text
        values = [""] * self.width
        seen: dict[int, str] = {}
        spelled = self.spelled
        for key, value in obj.items():
            if key not in spelled:
                spelled[key] = self.positions.get(_key_norm(key))
            index = spelled[key]
            if index is None:
                continue  # a key the schema does not know, as an unknown column of a file
            if index in seen:
                return RawRow(line, [], f"keys {seen[index]!r} and {key!r} name the same column"), text
            seen[index] = key
            values[index] = json_text(value)
        return RawRow(line, values), text


def stream_window_open(source: Source) -> StreamWindow:
    dataset = Dataset.objects.get(pk=source.dataset_id)
    try:
        dataset_schema_require(dataset)
    except ValidationError as exc:
        raise StreamSourceError(validation_message(exc)) from None
    assert dataset.current_schema_id is not None  # dataset_schema_require
    schema = SchemaVersion.objects.get(pk=dataset.current_schema_id)
    spec = schema_spec(schema)
    if not table_exists(dataset.slug):
        record_table_create(dataset.slug, spec, dataset.pk)
    record_indexes_sync(dataset, spec)
    run = lifecycle.run_inline_start(
        dataset=dataset,
        source=source,
        schema=schema,
        trigger=RunTrigger.STREAM,
        chunk_size=settings.STREAMS["BATCH_ROWS"],
        heartbeat_at=timezone.now(),
        attempts=1,
        summary={"stream": {"consumer": "", "redelivered": 0, "superseded": 0}},
    )
    return StreamWindow(run, spec)


def stream_window_close(window: StreamWindow) -> None:
    run = window.run
    run.refresh_from_db()
    status = RunStatus.PARTIALLY_SUCCEEDED if run.rows_rejected else RunStatus.SUCCEEDED
    lifecycle.run_finish(run, status)


def stream_runs_close_stale(source: Source) -> int:
    """End the runs of consumers of ``source`` that died (no heartbeat for ``RUN_HEARTBEAT_TIMEOUT``).

    What they committed stays: a stream run is a window of committed batches.
    """
    stale = timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    closed = 0
    for run in Run.objects.filter(
        source=source, trigger=RunTrigger.STREAM, status=RunStatus.RUNNING, heartbeat_at__lt=stale
    ):
        run.summary["note"] = "its consumer stopped; the batches it committed are kept"
        lifecycle.run_finish(run, RunStatus.PARTIALLY_SUCCEEDED if run.rows_rejected else RunStatus.SUCCEEDED)
        closed += 1
    return closed


@dataclass
class BatchOutcome:
    read: int = 0
    valid: int = 0
    rejected: int = 0
    redelivered: int = 0


def _in_batches(values: Sequence[str]) -> list[list[str]]:
    return [list(values[i : i + _IN_BATCH]) for i in range(0, len(values), _IN_BATCH)]


def _committed_ids(source_id: int, ids: Sequence[str]) -> set[str]:
    """Which of these messages of the source committed already."""
    if not ids:
        return set()
    if connection.vendor == "postgresql":
        table = StreamMessage._meta.db_table
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT message_id FROM {table} WHERE source_id = %s AND message_id = ANY(%s)", [source_id, list(ids)]
            )
            return {found for (found,) in cur.fetchall()}
    committed: set[str] = set()
    for part in _in_batches(ids):
        committed.update(
            StreamMessage.objects.filter(source_id=source_id, message_id__in=part).values_list("message_id", flat=True)
        )
    return committed


def _latest_orders(source_id: int, keys: Sequence[str]) -> dict[str, str]:
    """The place of the latest committed message for each of these keys that has one."""
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        table = StreamMessage._meta.db_table
        with connection.cursor() as cur:
            cur.execute(
                f'SELECT key, max("order") FROM {table} WHERE source_id = %s AND key = ANY(%s) GROUP BY key',
                [source_id, list(keys)],
            )
            return dict(cur.fetchall())
    latest: dict[str, str] = {}
    for part in _in_batches(keys):
        rows = (
            StreamMessage.objects.filter(source_id=source_id, key__in=part)
            .values("key")
            .annotate(last=Max("order"))
            .values_list("key", "last")
        )
        latest.update(rows)
    return latest


def _ledger_add(source_id: int, run_id: int, entries: Sequence[tuple[Message, str]]) -> None:
    """Record committed messages (with the key each wrote, empty for a rejected one); COPY on Postgres."""
    if connection.vendor != "postgresql":
        StreamMessage.objects.bulk_create(
            (
                StreamMessage(source_id=source_id, message_id=m.id, order=m.order, key=key, run_id=run_id)
                for m, key in entries
            ),
            batch_size=2000,
        )
        return
    table = StreamMessage._meta.db_table
    columns = 'source_id, message_id, "order", key, run_id'
    with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for m, key in entries:
            copy.write_row((source_id, m.id, m.order, key, run_id))


def batch_commit(
    source: Source, window: StreamWindow, messages: Sequence[Message], *, check_all: bool = False
) -> BatchOutcome:
    """Steps 2-4 for one micro-batch: parse, validate, and commit it in one transaction.

    Only messages the broker delivered before are looked up among the
    committed ones (a first delivery cannot have been committed), unless
    ``check_all``. Returns what it stored; the caller acknowledges
    ``messages`` afterwards.
    """
    run = window.run
    # One message once, whatever a claim handed over twice.
    messages = list({m.id: m for m in messages}.values())
    first_line = run.rows_read + 1
    rows: list[RawRow] = []
    texts: dict[int, str] = {}
    for i, message in enumerate(messages):
        row, text = window.row(first_line + i, message)
        rows.append(row)
        if row.error:
            texts[row.line] = text
    result = chunk_validate(window.validator, rows) if rows else None
    by_line = {first_line + i: m for i, m in enumerate(messages)}
    outcome = BatchOutcome()
    with transaction.atomic():
        # The source's row lock orders the commits of every consumer of this source: each
        # sees what the others committed, and the position only moves forward.
        locked = Source.objects.select_for_update().filter(pk=source.pk).values_list("position", flat=True).first()
        committed = _committed_ids(source.pk, [m.id for m in messages if check_all or m.redelivered])
        outcome.redelivered = len(committed)
        if result is None or len(committed) == len(messages):
            return outcome
        valid = [r for r in result.valid if by_line[r.line].id not in committed]
        rejected = [r for r in result.rejected if by_line[r.line].id not in committed]
        # Within the batch, the last message for a key wins ...
        winners: dict[str, ValidRow] = {}
        for r in valid:
            held = winners.get(r.key)
            if held is None or by_line[r.line].order > by_line[held.line].order:
                winners[r.key] = r
        # ... and so does a later message another consumer committed already.
        latest = _latest_orders(source.pk, list(winners))
        load = [r for key, r in winners.items() if latest.get(key, "") < by_line[r.line].order]
        load.sort(key=lambda r: r.line)
        counts = records_load(run, window.spec, load)
        _rejected_store(run, rejected, by_line, texts)
        _ledger_add(
            source.pk,
            run.pk,
            [(by_line[r.line], r.key) for r in valid] + [(by_line[r.line], "") for r in rejected],
        )
        fresh = len(valid) + len(rejected)
        run.rows_read += fresh
        run.rows_valid += len(valid)
        run.rows_rejected += len(rejected)
        run.rows_inserted += counts.inserted
        run.rows_updated += counts.updated
        run.rows_unchanged += counts.unchanged
        stream = run.summary.setdefault("stream", {})
        stream["redelivered"] = int(stream.get("redelivered", 0)) + len(committed)
        stream["superseded"] = int(stream.get("superseded", 0)) + len(valid) - len(load)
        lines = [r.line for r in valid] + [r.line for r in rejected]
        newest = max((by_line[line] for line in lines), key=lambda m: m.order)
        run.checkpoint = {"rows": run.rows_read, "position": newest.id, "batches": run.checkpoint.get("batches", 0) + 1}
        run.heartbeat_at = timezone.now()
        run.save(
            update_fields=[
                "rows_read",
                "rows_valid",
                "rows_rejected",
                "rows_inserted",
                "rows_updated",
                "rows_unchanged",
                "checkpoint",
                "summary",
                "heartbeat_at",
            ]
        )
        order_of = ORDERS[source.kind]
        if not locked or order_of(locked) < newest.order:
            Source.objects.filter(pk=source.pk).update(position=newest.id, position_updated_at=timezone.now())
        outcome.read, outcome.valid, outcome.rejected = fresh, len(valid), len(rejected)
    return outcome


def _rejected_store(
    run: Run, rejected: Sequence[RejectedValues], by_line: dict[int, Message], texts: dict[int, str]
) -> None:
    """Keep a batch's rejected rows, each with its message's id (and its text when it was no row at all)."""
    assert run.schema_id is not None  # a stream run is created under its dataset's schema
    RejectedRow.objects.bulk_create(
        (
            RejectedRow(
                run=run,
                line_number=r.line,
                raw=r.raw if r.raw or r.line not in texts else {"__message__": printable(_excerpt(texts[r.line]))},
                errors=r.errors,
                schema_id=run.schema_id,
                message_id=by_line[r.line].id,
            )
            for r in rejected
        ),
        batch_size=1000,
    )


def _read_batch(adapter: StreamAdapter, should_stop: Callable[[], bool]) -> list[Message]:
    """Step 1: at most BATCH_ROWS messages, gathered for at most BATCH_SECONDS."""
    limit = settings.STREAMS["BATCH_ROWS"]
    deadline = time.monotonic() + settings.STREAMS["BATCH_SECONDS"]
    got: list[Message] = []
    while len(got) < limit and not (got and should_stop()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            part = adapter.read(max_messages=limit - len(got), timeout=remaining)
        except BrokerUnavailable:
            if not got:
                raise
            # Commit what arrived; the trouble shows again at the next read.
            logger.warning("stream read failed after %s messages of a batch", len(got), exc_info=True)
            break
        if not part:
            break
        got += part
    return got


def _status_write(source: Source, *, lag: int | None = None, error: str = "") -> None:
    values: dict[str, Any] = {"lag_checked_at": timezone.now(), "consumer_error": error[:2000]}
    if lag is not None:
        values["lag"] = lag
    Source.objects.filter(pk=source.pk).update(**values)


def _ledger_prune(source: Source, adapter: StreamAdapter) -> int:
    """Forget committed messages older than any the broker could still deliver."""
    floor = adapter.floor()
    if floor is None:
        return 0
    deleted, _ = StreamMessage.objects.filter(source_id=source.pk, order__lt=floor).delete()
    return deleted


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < end:
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))


def default_consumer_name() -> str:
    """This machine's name: a consumer restarted here reads what it left unacknowledged first."""
    return socket.gethostname() or "consumer"


def stream_consume(
    *,
    source: Source,
    consumer: str | None = None,
    until_idle: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[ConsumeTotals], None] | None = None,
) -> ConsumeTotals:
    """Read ``source`` batch by batch until ``should_stop()`` (checked between batches) or idle.

    ``until_idle`` stops once no message has arrived for that many seconds
    (the broker being unreachable counts as nothing arriving).
    """
    if source.kind not in stream_kinds():
        raise StreamSourceError(f"source {source.name!r} is of kind {source.kind!r}, which is not a stream")
    dataset_schema_require(source.dataset)
    stream_runs_close_stale(source)
    config = source_stream_config(
        source, consumer=consumer or default_consumer_name(), claim_idle=settings.STREAMS["CLAIM_IDLE_SECONDS"]
    )
    totals = ConsumeTotals()
    adapter: StreamAdapter | None = None
    window: StreamWindow | None = None
    backoff = 0.5
    last_message = last_status = last_prune = time.monotonic()
    try:
        while not should_stop():
            now = time.monotonic()
            if until_idle is not None and now - last_message >= until_idle:
                break
            try:
                if adapter is None:
                    adapter = ADAPTERS[source.kind](config)
                    last_status = 0.0
                messages = _read_batch(adapter, should_stop)
            except BrokerUnavailable as exc:
                logger.warning("source %s: %s; retrying in %.1f s", source.name, exc, backoff)
                _status_write(source, error=str(exc))
                if adapter is not None:
                    adapter.close()
                    adapter = None
                # Jitter, not a secret.
                wait = backoff * random.uniform(0.8, 1.2)  # noqa: S311  # nosec B311
                if until_idle is not None:
                    wait = max(0.0, min(wait, until_idle - (time.monotonic() - last_message)))
                _sleep(wait, should_stop)
                backoff = min(backoff * 2, settings.STREAMS["BACKOFF_MAX"])
                continue
            backoff = 0.5
            if window is not None and now - window.started >= settings.STREAMS["RUN_WINDOW_SECONDS"]:
                stream_window_close(window)
                window = None
            if messages:
                last_message = time.monotonic()
                if window is None or _schema_changed(window):
                    if window is not None:
                        stream_window_close(window)
                    window = stream_window_open(source)
                    window.run.summary["stream"]["consumer"] = config.consumer
                    totals.runs += 1
                    totals.run_ids.append(window.run.pk)
                outcome = _commit_with_retry(source, window, messages)
                try:
                    adapter.ack(messages)
                except BrokerUnavailable as exc:
                    # Committed: the broker delivers them again and the ledger recognises them.
                    logger.warning("source %s: acknowledging failed (%s); they will come again", source.name, exc)
                    adapter.close()
                    adapter = None
                # Idle time counts from the end of the last batch, not from its arrival.
                last_message = time.monotonic()
                totals.batches += 1
                totals.read += len(messages)
                totals.valid += outcome.valid
                totals.rejected += outcome.rejected
                totals.redelivered += outcome.redelivered
                if on_batch is not None:
                    on_batch(totals)
            elif window is not None and time.monotonic() - last_status >= STATUS_EVERY:
                Run.objects.filter(pk=window.run.pk).update(heartbeat_at=timezone.now())
            if adapter is not None and time.monotonic() - last_status >= STATUS_EVERY:
                last_status = time.monotonic()
                try:
                    _status_write(source, lag=adapter.lag())
                    if last_status - last_prune >= PRUNE_EVERY:
                        last_prune = last_status
                        _ledger_prune(source, adapter)
                except BrokerUnavailable as exc:
                    _status_write(source, error=str(exc))
    finally:
        if window is not None:
            stream_window_close(window)
        if adapter is not None:
            with contextlib.suppress(BrokerUnavailable):
                _status_write(source, lag=adapter.lag())
            adapter.close()
    return totals


def _schema_changed(window: StreamWindow) -> bool:
    current = Dataset.objects.filter(pk=window.run.dataset_id).values_list("current_schema_id", flat=True).first()
    return current != window.run.schema_id


def _commit_with_retry(source: Source, window: StreamWindow, messages: Sequence[Message]) -> BatchOutcome:
    """Commit a batch; when another consumer committed some of its messages meanwhile, again without them."""
    for attempt in range(3):
        try:
            return batch_commit(source, window, messages, check_all=attempt > 0)
        except IntegrityError:
            # Two consumers held the same message (one was slow past the claim time), or the
            # group was made anew and delivers old messages as new: the retry looks every
            # message up, finds the committed ones and leaves them out.
            window.run.refresh_from_db()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
