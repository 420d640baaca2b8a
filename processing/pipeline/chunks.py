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
import gc
import importlib
import multiprocessing
import os

# Only for its exception type: chunks travel between this process and its own
# forked children over multiprocessing pipes; nothing from outside is unpickled.
import pickle  # nosec B403
import queue
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing.connection import Connection
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings

from ingestion.reader import CsvReader, NdjsonReader, RawRow

from ..quality.profile import ChunkProfile, chunk_profile
from .validate import ROW_ERRORS, RejectedValues, RowValidator, ValidRow

if TYPE_CHECKING:
    from .columnar import ColumnarValidator

# Validated chunks that may wait for the loader: one is enough to keep both
# sides busy, more would only hold memory.
AHEAD = 1
# Validating processes at most (see default_processes).
MAX_PROCESSES = 2
_POLL_SECONDS = 0.1


@dataclass
class ChunkResult:
    valid: list[ValidRow] = field(default_factory=list)
    rejected: list[RejectedValues] = field(default_factory=list)
    last_line: int = 0
    rows: int = 0
    is_last: bool = False
    bytes_read: int = 0  # the reader's position once this chunk (and the look-ahead) was read
    profile: ChunkProfile | None = None  # the valid rows' statistics (processing.quality), when asked for

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Chunks cross to the loader's process: column lists of strings pickle
        # far faster than ten thousand row objects.
        v = self.valid
        columns = (
            [r.line for r in v],
            [r.key for r in v],
            [r.data_json for r in v],
            [r.unique_values for r in v] if any(r.unique_values for r in v) else None,
            [r.raw for r in v],
            [r.processed for r in v],
            [r.copy for r in v],
        )
        return _chunk_result, (
            columns,
            self.rejected,
            self.last_line,
            self.rows,
            self.is_last,
            self.bytes_read,
            self.profile,
        )


def _chunk_result(columns: tuple[Any, ...], *rest: Any) -> ChunkResult:
    lines, keys, data_json, unique, raw, processed, copy = columns
    if unique is None:
        unique = [{} for _ in lines]
    valid = list(map(ValidRow, lines, keys, data_json, unique, raw, processed, copy))
    return ChunkResult(valid, *rest)


def _chunks(rows: Iterator[RawRow], size: int) -> Iterator[tuple[list[RawRow], bool]]:
    """Yield ``(chunk, is_last)`` pairs, looking one chunk ahead."""
    current = list(islice(rows, size))
    while current:
        following = list(islice(rows, size))
        yield current, not following
        current = following


def chunk_validate(validator: RowValidator, rows: list[RawRow]) -> ChunkResult:
    """Step 3: validate a chunk of raw rows, as columns (``columnar.ColumnarValidator``).

    Gives exactly what ``chunk_validate_rows`` gives, row for row.
    """
    if type(validator).validate is not RowValidator.validate:
        # A validator that changes what validate gives cannot be reproduced in columns.
        return chunk_validate_rows(validator, rows)
    result = ChunkResult(rows=len(rows), last_line=rows[-1].line)
    read = [row for row in rows if not row.error]
    outcomes = iter(columnar_of(validator).validate([r.line for r in read], [r.values for r in read]))
    valid, rejected = result.valid, result.rejected
    for row in rows:
        if row.error:
            rejected.append(validator.reject(row.line, row.values, {ROW_ERRORS: [row.error]}))
            continue
        outcome = next(outcomes)
        if type(outcome) is ValidRow:
            valid.append(outcome)
        else:
            rejected.append(outcome)
    return result


def chunk_validate_rows(validator: RowValidator, rows: list[RawRow]) -> ChunkResult:
    """Step 3 one row at a time with ``RowValidator``: the reference ``chunk_validate`` is held to."""
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


# One columnar validator per row validator (a run's), built at its first chunk.
_COLUMNAR: weakref.WeakKeyDictionary[RowValidator, ColumnarValidator] = weakref.WeakKeyDictionary()


def columnar_of(validator: RowValidator) -> ColumnarValidator:
    """The columnar validator working with ``validator``'s schema, columns and size limit."""
    columnar = _COLUMNAR.get(validator)
    if columnar is None:
        columnar = _COLUMNAR[validator] = columnar_module().ColumnarValidator(validator)
    return columnar


def columnar_module() -> ModuleType:
    """``processing.pipeline.columnar``, imported by the first run of a process.

    It imports polars, which costs a process ~25 MB and ~0.25 s of CPU: web
    and queue workers import the pipeline, most of them never validate.
    ``ValidatedChunks`` imports it before forking, so that its validating
    processes find it loaded (polars' thread pool only starts with a query).
    """
    return importlib.import_module(f"{__package__}.columnar")


class _End:
    """Sent after the last chunk, with the error that ended reading, if any."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _RawChunk(NamedTuple):
    """A chunk read by the reading process for another process to validate (columns pickle fast)."""

    lines: list[int]
    values: list[list[str]]
    errors: list[str]
    is_last: bool
    bytes_read: int

    @classmethod
    def of(cls, rows: list[RawRow], is_last: bool, bytes_read: int) -> _RawChunk:
        return cls([r.line for r in rows], [r.values for r in rows], [r.error for r in rows], is_last, bytes_read)

    def rows(self) -> list[RawRow]:
        return list(map(RawRow, self.lines, self.values, self.errors))


def _send_end(conn: Connection, end: _End) -> None:
    try:
        conn.send(end)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        # An error that does not pickle still reaches the caller, as text.
        conn.send(_End(RuntimeError(f"{type(end.error).__name__}: {end.error} ({exc})")))


def chunk_owner(index: int, processes: int) -> int:
    """Which validating process handles chunk ``index``.

    The first process also reads and splits the whole file (about a quarter
    of the work a chunk costs), so it validates one chunk in every round
    while each other process validates two: 0, 1, 1, 0, 1, 1, ... with two.
    """
    if processes == 1:
        return 0
    turn = index % (2 * processes - 1)
    return 0 if turn == 0 else (turn + 1) // 2


def default_processes() -> int:
    """Validating processes to use here: 0 means a thread.

    Two where there are two cores (the loader mostly waits for Postgres).
    None in a daemonic process (a django-q2 worker), which may not have
    children, nor where other threads run (a threaded web server): a fork
    copies locks those threads may hold.
    """
    if (
        "fork" not in multiprocessing.get_all_start_methods()
        or multiprocessing.current_process().daemon
        or threading.active_count() > 1
    ):
        return 0
    return min(MAX_PROCESSES, os.cpu_count() or 1)


class ValidatedChunks:
    """Iterate over validated chunks of ``rows``, produced in the background.

    With ``processes`` >= 1 the work is done by forked child processes, truly
    in parallel with the caller: the first reads the file and validates every
    n-th chunk, handing the others (raw) to the rest, and the caller collects
    the results in file order. With 0 it is a thread, which overlaps with the
    caller only while Postgres works. Children inherit the open file, the
    reader and the validator; they never touch the database.

    Use as a context manager: leaving the block (normally or through an
    exception) stops the producers and waits for them, so the file they read
    from can be closed safely. An error while reading or validating is raised
    in the caller's thread, where the chunk would have been consumed.
    """

    def __init__(
        self,
        reader: CsvReader | NdjsonReader,
        validator: RowValidator,
        rows: Iterator[RawRow],
        size: int,
        *,
        processes: int | None = None,
        nice: int | None = None,
        profile: bool = False,
    ) -> None:
        self._reader = reader
        # Profile each chunk's valid rows where they are validated (processing.quality.profile).
        self._profile = profile
        # Validating is CPU-bound and can wait; web requests on the same cores cannot.
        self._nice = settings.DATAFLOW["NICE"] if nice is None else nice
        self._validator = validator
        self._rows = rows
        self._size = size
        self.processes = default_processes() if processes is None else processes
        self._stop = threading.Event()
        self._queue: queue.Queue[ChunkResult | _End] = queue.Queue(maxsize=AHEAD)
        self._thread: threading.Thread | None = None
        self._children: list[multiprocessing.process.BaseProcess] = []
        self._receivers: list[Connection] = []
        self._index = 0

    def __enter__(self) -> ValidatedChunks:
        columnar_module()
        if not self.processes:
            self._thread = threading.Thread(target=self._produce_to_queue, name="pipeline-validate", daemon=True)
            self._thread.start()
            _heap_freeze()
            return self
        context = multiprocessing.get_context("fork")
        to_caller = [context.Pipe(duplex=False) for _ in range(self.processes)]
        to_helpers = [context.Pipe(duplex=False) for _ in range(self.processes - 1)]
        ends = [end for pair in (*to_caller, *to_helpers) for end in pair]
        self._receivers = [receiver for receiver, _ in to_caller]
        # Each process closes the pipe ends it does not use, so that a
        # process that dies shows up as end-of-file at the other end.
        outs = [to_caller[0][1], *(sender for _, sender in to_helpers)]
        jobs: list[tuple[Callable[..., None], tuple[Any, ...], list[Connection]]] = [
            (self._read_and_validate, (outs,), outs)
        ]
        for (source, _), (_, out) in zip(to_helpers, to_caller[1:], strict=True):
            jobs.append((self._validate_for_reader, (source, out), [source, out]))
        for target, args, used in jobs:
            unused = [end for end in ends if all(end is not u for u in used)]
            child = context.Process(target=_in_child, args=(target, args, unused, self._nice), daemon=True)
            child.start()
            self._children.append(child)
        for end in ends:
            if all(end is not r for r in self._receivers):
                end.close()
        _heap_freeze()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for child in self._children:
            # Children only read and validate: stopping them loses nothing.
            if child.is_alive():
                child.terminate()
            child.join()
            child.close()
        for receiver in self._receivers:
            receiver.close()
        if self._thread is not None:
            while self._thread.is_alive():
                # Make room so a producer blocked on a full queue sees the stop.
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
                self._thread.join(_POLL_SECONDS)
        gc.unfreeze()

    def __iter__(self) -> Iterator[ChunkResult]:
        while True:
            item = self._next()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _next(self) -> ChunkResult | _End:
        if not self._receivers:
            return self._queue.get()
        # Chunk i comes from process chunk_owner(i, n), so results arrive in file order.
        receiver = self._receivers[chunk_owner(self._index, len(self._receivers))]
        self._index += 1
        try:
            return receiver.recv()
        except EOFError:
            raise RuntimeError("a validating process ended without finishing the file") from None

    def _validated(self, rows: list[RawRow], is_last: bool, bytes_read: int) -> ChunkResult:
        result = chunk_validate(self._validator, rows)
        result.is_last = is_last
        result.bytes_read = bytes_read
        if self._profile:
            copies = [r.copy for r in result.valid]
            result.profile = chunk_profile(self._validator.schema, copies, use_polars=columnar_module().polars_usable())
        return result

    def _produce_to_queue(self) -> None:
        """The thread: read and validate every chunk."""

        def put(item: ChunkResult | _End) -> bool:
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=_POLL_SECONDS)
                    return True
                except queue.Full:
                    continue
            return False

        _lower_priority(self._nice, thread=True)
        try:
            for chunk, is_last in _chunks(self._rows, self._size):
                # The position after the look-ahead chunk, as the loader used to read it.
                if not put(self._validated(chunk, is_last, self._reader.bytes.count)):
                    return
                del chunk
        except BaseException as exc:  # handed to the caller's thread
            put(_End(exc))
            return
        put(_End())

    def _read_and_validate(self, outs: list[Connection]) -> None:
        """The first child: read every chunk; validate the chunks it owns, pass the others on raw."""
        index = 0
        try:
            for chunk, is_last in _chunks(self._rows, self._size):
                bytes_read = self._reader.bytes.count
                owner = chunk_owner(index, len(outs))
                if owner == 0:
                    outs[0].send(self._validated(chunk, is_last, bytes_read))
                else:
                    outs[owner].send(_RawChunk.of(chunk, is_last, bytes_read))
                index += 1
                del chunk
            end = _End()
        except BaseException as exc:  # handed to the caller
            end = _End(exc)
        # The end goes where the caller will look for the next chunk; the
        # other helpers are told there is nothing more.
        end_out = outs[chunk_owner(index, len(outs))]
        _send_end(end_out, end)
        for out in outs[1:]:
            if out is not end_out:
                out.send(None)

    def _validate_for_reader(self, source: Connection, out: Connection) -> None:
        """A further child: validate the raw chunks the first one sends."""
        while True:
            try:
                item = source.recv()
            except EOFError:
                return
            if item is None:
                return
            if isinstance(item, _End):
                _send_end(out, item)
                return
            try:
                result = self._validated(item.rows(), item.is_last, item.bytes_read)
            except BaseException as exc:
                _send_end(out, _End(exc))
                return
            out.send(result)


def _heap_freeze() -> None:
    """Keep the collector's full passes off everything alive before the chunks stream in.

    Each chunk brings tens of thousands of new objects (rows, their dicts),
    and every full collection walked Django's whole heap again: about two
    thirds of the time the caller spent taking a chunk in. ``__exit__``
    unfreezes, so a long-lived worker's garbage (frozen now or made later) is
    collected as usual.
    """
    gc.freeze()


def _lower_priority(nice: int, *, thread: bool = False) -> None:
    """Add ``nice`` to the calling thread's niceness (``PIPELINE_NICE``).

    On Linux the niceness belongs to a thread: in the validating thread this
    leaves the loader's thread, and the rest of the process, as they were.
    Elsewhere it belongs to the process, so a thread leaves it alone (it
    would lower the whole worker, a little more at every run).
    """
    if nice > 0 and (not thread or sys.platform.startswith("linux")):
        with contextlib.suppress(OSError):
            os.nice(nice)


def _in_child(target: Callable[..., None], args: tuple[Any, ...], unused: list[Connection], nice: int) -> None:
    _lower_priority(nice)
    for end in unused:
        end.close()
    # Everything inherited from the parent (Django, the app registry, ...)
    # lives as long as the child: keep the collector from walking it again
    # and again. (A larger young generation as well was tried: ~15 MB more
    # peak RSS for no measurable CPU.)
    gc.freeze()
    target(*args)
