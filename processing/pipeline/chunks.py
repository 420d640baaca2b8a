"""Read and validate chunks ahead of the load, in a second process.

Steps 1-3 (read, map, validate) are pure Python and never touch the
database; steps 4-6 (deduplicate, load, write) mostly wait for Postgres.
``ValidatedChunks`` runs the first half in a forked child process (a thread
where forking is not allowed), so the next chunk is validated while the last
one is merged and committed: both cores work at once, and every database
call still happens in the caller's thread, connection and transactions, so
the per-chunk transaction and checkpoint are exactly as before.

At most one validated chunk waits to be loaded, so memory stays flat.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from ingestion.reader import CsvReader, RawRow

from .validate import ROW_ERRORS, RejectedValues, RowValidator, ValidRow

# Validated chunks that may wait for the loader: one is enough to keep both
# sides busy, more would only hold memory.
AHEAD = 1
_POLL_SECONDS = 0.1


@dataclass
class ChunkResult:
    valid: list[ValidRow] = field(default_factory=list)
    rejected: list[RejectedValues] = field(default_factory=list)
    last_line: int = 0
    rows: int = 0
    is_last: bool = False
    bytes_read: int = 0  # the reader's position once this chunk (and the look-ahead) was read

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Chunks cross to the loader's process: column lists of strings pickle
        # far faster than ten thousand row objects.
        v = self.valid
        columns = (
            [r.line for r in v],
            [r.key for r in v],
            [r.data_json for r in v],
            [r.content_hash for r in v],
            [r.unique_values for r in v] if any(r.unique_values for r in v) else None,
            ["\x00".join(r.values) for r in v],  # a valid row holds no NUL
            [r.processed for r in v],
        )
        return _chunk_result, (columns, self.rejected, self.last_line, self.rows, self.is_last, self.bytes_read)


def _chunk_result(columns: tuple[Any, ...], *rest: Any) -> ChunkResult:
    lines, keys, data_json, hashes, unique, raw, processed = columns
    if unique is None:
        unique = [{} for _ in lines]
    valid = list(map(ValidRow, lines, keys, data_json, hashes, unique, [r.split("\x00") for r in raw], processed))
    return ChunkResult(valid, *rest)


def _chunks(rows: Iterator[RawRow], size: int) -> Iterator[tuple[list[RawRow], bool]]:
    """Yield ``(chunk, is_last)`` pairs, looking one chunk ahead."""
    current = list(islice(rows, size))
    while current:
        following = list(islice(rows, size))
        yield current, not following
        current = following


def chunk_validate(validator: RowValidator, rows: list[RawRow]) -> ChunkResult:
    """Step 3: validate a chunk of raw rows."""
    result = ChunkResult(rows=len(rows), last_line=rows[-1].line)
    validate = validator.validate
    valid, rejected = result.valid, result.rejected
    for row in rows:
        if row.error:
            rejected.append(validator.reject(row.line, row.values, {ROW_ERRORS: [row.error]}))
            continue
        outcome = validate(row.line, row.values)
        if type(outcome) is ValidRow:
            valid.append(outcome)
        else:
            rejected.append(outcome)
    return result


class _End:
    """Sent after the last chunk, with the error that ended reading, if any."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def _can_fork() -> bool:
    # A daemonic process (a django-q2 worker) may not have children.
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


class ValidatedChunks:
    """Iterate over validated chunks of ``rows``, produced in the background.

    The producer is a forked child process where the platform allows it (the
    two halves then run truly in parallel), a thread otherwise (they overlap
    only while Postgres works). The child inherits the open file, the reader
    and the validator; it never touches the database.

    Use as a context manager: leaving the block (normally or through an
    exception) stops the producer and waits for it, so the file it reads from
    can be closed safely. An error while reading or validating is raised in
    the caller's thread, where the chunk would have been consumed.
    """

    def __init__(
        self,
        reader: CsvReader,
        validator: RowValidator,
        rows: Iterator[RawRow],
        size: int,
        *,
        use_process: bool | None = None,
    ) -> None:
        self._reader = reader
        self._validator = validator
        self._rows = rows
        self._size = size
        self.use_process = _can_fork() if use_process is None else use_process
        self._stop = threading.Event()
        self._queue: queue.Queue[ChunkResult | _End] = queue.Queue(maxsize=AHEAD)
        self._thread: threading.Thread | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._receiver: Connection | None = None

    def __enter__(self) -> ValidatedChunks:
        if self.use_process:
            context = multiprocessing.get_context("fork")
            self._receiver, sender = context.Pipe(duplex=False)
            self._process = context.Process(target=self._produce_to_pipe, args=(sender,), daemon=True)
            self._process.start()
            sender.close()
        else:
            self._thread = threading.Thread(target=self._produce_to_queue, name="pipeline-validate", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._process is not None:
            # The child only reads and validates: stopping it loses nothing.
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
            self._process.close()
            assert self._receiver is not None
            self._receiver.close()
        if self._thread is not None:
            while self._thread.is_alive():
                # Make room so a producer blocked on a full queue sees the stop.
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
                self._thread.join(_POLL_SECONDS)

    def __iter__(self) -> Iterator[ChunkResult]:
        while True:
            item = self._next()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _next(self) -> ChunkResult | _End:
        if self._receiver is None:
            return self._queue.get()
        try:
            return self._receiver.recv()
        except EOFError:
            raise RuntimeError("the validating process ended without finishing the file") from None

    def _produce(self, put: Callable[[ChunkResult | _End], bool]) -> None:
        """Read and validate chunk after chunk, handing each to ``put`` (False: stop)."""
        try:
            for chunk, is_last in _chunks(self._rows, self._size):
                result = chunk_validate(self._validator, chunk)
                result.is_last = is_last
                # Read now, as the loader used to: after the look-ahead chunk.
                result.bytes_read = self._reader.bytes.count
                del chunk
                if not put(result):
                    return
        except BaseException as exc:  # handed to the caller's thread
            put(_End(exc))
            return
        put(_End())

    def _produce_to_queue(self) -> None:
        def put(item: ChunkResult | _End) -> bool:
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=_POLL_SECONDS)
                    return True
                except queue.Full:
                    continue
            return False

        self._produce(put)

    def _produce_to_pipe(self, sender: Connection) -> None:
        def put(item: ChunkResult | _End) -> bool:
            try:
                sender.send(item)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                if not isinstance(item, _End):
                    raise
                # An error that does not pickle still reaches the caller, as text.
                sender.send(_End(RuntimeError(f"{type(item.error).__name__}: {item.error} ({exc})")))
            return True

        self._produce(put)
        sender.close()
