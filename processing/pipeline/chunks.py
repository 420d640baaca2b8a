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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing.connection import Connection
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from django.conf import settings

from ingestion.reader import CsvReader, NdjsonReader, RawRow, RowColumns

from ..quality.profile import ChunkProfile, chunk_profile
from .validate import ROW_ERRORS, RejectedValues, RowValidator, ValidRow
from .validrows import JoinedRows, TextColumn, ValidRows

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
    valid: ValidRows = field(default_factory=lambda: ValidRows.of([]))
    rejected: list[RejectedValues] = field(default_factory=list)
    last_line: int = 0
    rows: int = 0
    is_last: bool = False
    bytes_read: int = 0  # the reader's position once this chunk (and the look-ahead) was read
    profile: ChunkProfile | None = None  # the valid rows' statistics (processing.quality), when asked for

    def __post_init__(self) -> None:
        # Chunks cross to the loader's process as columns (see validrows.py).
        self.valid = ValidRows.of(self.valid)


def _column_chunks(chunks: Iterator[RowColumns]) -> Iterator[tuple[RowColumns, bool]]:
    """Yield ``(chunk, is_last)`` pairs of column chunks, looking one chunk ahead."""
    current = next(chunks, None)
    while current is not None:
        following = next(chunks, None)
        yield current, following is None
        current = following


def _as_columns(rows: Iterator[RawRow], size: int) -> Iterator[RowColumns]:
    """Rows in chunks of ``size``, as columns (``CsvReader.row_chunks`` for any reader)."""
    while chunk := list(islice(rows, size)):
        yield [r.line for r in chunk], [r.values for r in chunk], [r.error for r in chunk]


def chunk_validate(validator: RowValidator, rows: list[RawRow]) -> ChunkResult:
    """Step 3: validate a chunk of raw rows, as columns (``columnar.ColumnarValidator``).

    Gives exactly what ``chunk_validate_rows`` gives, row for row.
    """
    return chunk_validate_columns(validator, [r.line for r in rows], [r.values for r in rows], [r.error for r in rows])


def chunk_validate_columns(
    validator: RowValidator,
    lines: list[int],
    values: Sequence[list[str]],
    errors: list[str],
    raws: list[str] | None = None,
) -> ChunkResult:
    """``chunk_validate`` of a chunk given as columns: each row's line, values and reading error.

    ``raws``, when given, is each row's values joined by NUL (what the
    columnar validator would join them into).
    """
    if type(validator).validate is not RowValidator.validate:
        # A validator that changes what validate gives cannot be reproduced in columns.
        return chunk_validate_rows(validator, list(map(RawRow, lines, values, errors)))
    result = ChunkResult(rows=len(lines), last_line=lines[-1])
    if any(errors):
        read = [i for i, error in enumerate(errors) if not error]
        read_lines = [lines[i] for i in read]
        read_values: Sequence[list[str]] = (
            values.take(read) if isinstance(values, JoinedRows) else [values[i] for i in read]
        )
        read_raws = [raws[i] for i in read] if raws is not None else None
    else:
        read_lines, read_values, read_raws = lines, values, raws
    valid, positions, others = columnar_of(validator).validate_chunk(read_lines, read_values, read_raws)
    if any(type(outcome) is ValidRow for outcome in others):
        # A row the columns left to the row validator passed it: merge them in file order.
        for position, in_columns in zip(positions, valid, strict=True):
            others[position] = in_columns
        valid_rows: list[ValidRow] = []
        for outcome in others:
            if type(outcome) is ValidRow:
                valid_rows.append(outcome)
        valid = ValidRows.of(valid_rows)
    result.valid = valid
    outcomes = iter(others)
    rejected = result.rejected
    for i, (line, error) in enumerate(zip(lines, errors, strict=True)):
        if error:
            rejected.append(validator.reject(line, values[i], {ROW_ERRORS: [error]}))
            continue
        outcome = next(outcomes)
        if outcome is not None and type(outcome) is not ValidRow:
            rejected.append(outcome)
    return result


def chunk_validate_rows(validator: RowValidator, rows: list[RawRow]) -> ChunkResult:
    """Step 3 one row at a time with ``RowValidator``: the reference ``chunk_validate`` is held to."""
    result = ChunkResult(rows=len(rows), last_line=rows[-1].line)
    validate = validator.validate
    valid: list[ValidRow] = []
    rejected = result.rejected
    for row in rows:
        if row.error:
            rejected.append(validator.reject(row.line, row.values, {ROW_ERRORS: [row.error]}))
            continue
        outcome = validate(row.line, row.values)
        if type(outcome) is ValidRow:
            valid.append(outcome)
        else:
            rejected.append(outcome)
    result.valid = ValidRows.of(valid)
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


class _RawChunk:
    """A chunk read by the reading process for another process to validate.

    It crosses the pipe as columns: the line numbers, and each row's values
    joined by NUL in one text (how the columnar validator takes them in),
    with the values of the few rows a split would not give back (an empty
    row, a value holding a NUL) and the reading errors on the side.
    """

    __slots__ = ("bytes_read", "errors", "is_last", "lines", "raws", "values")

    def __init__(
        self,
        lines: list[int],
        values: Sequence[list[str]],
        errors: list[str],
        is_last: bool,
        bytes_read: int,
        raws: list[str] | None = None,
    ) -> None:
        self.lines = lines
        self.values = values
        self.errors = errors
        self.is_last = is_last
        self.bytes_read = bytes_read
        self.raws = raws

    def rows(self) -> list[RawRow]:
        return list(map(RawRow, self.lines, self.values, self.errors))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        values = self.values
        if isinstance(values, JoinedRows):
            raws, kept = values.raws, values.kept
            joined = TextColumn.of(raws)
        else:
            raws = list(map("\x00".join, values))
            joined = TextColumn.of(raws)
            # A row splits back into its values unless it has none or one of them
            # holds a NUL: then its text has more NULs than values but one.
            empty = values.count([])
            if joined.data.count(b"\x00") == sum(map(len, values)) - len(values) + empty:
                kept = {i: v for i, v in enumerate(values) if not v} if empty else {}
            else:
                kept = {
                    i: v for i, (v, raw) in enumerate(zip(values, raws, strict=True)) if raw.count("\x00") != len(v) - 1
                }
        errors = {i: e for i, e in enumerate(self.errors) if e} if any(self.errors) else {}
        return _raw_chunk, (self.lines, joined, kept, errors, self.is_last, self.bytes_read)


def _raw_chunk(
    lines: list[int],
    joined: TextColumn,
    kept: dict[int, list[str]],
    errors: dict[int, str],
    is_last: bool,
    bytes_read: int,
) -> _RawChunk:
    raws = joined.to_list()
    values = JoinedRows(raws, kept)  # split only where a row is read one at a time
    row_errors = [""] * len(lines)
    for i, e in errors.items():
        row_errors[i] = e
    return _RawChunk(lines, values, row_errors, is_last, bytes_read, raws)


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
        rows: Iterator[RawRow] | None,
        size: int,
        *,
        skip: int = 0,
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
        # None: the reader's rows after the first ``skip`` ones, read a chunk at a time.
        self._rows = rows
        self._skip = skip
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

    def _read(self) -> Iterator[tuple[RowColumns, bool]]:
        """The chunks to validate, as columns, with whether each is the last."""
        if self._rows is not None:
            return _column_chunks(_as_columns(self._rows, self._size))
        reader = self._reader
        rows = reader.rows()
        if self._skip:
            # Rows committed before a resume: read past them (the columns start where rows() stops).
            for _ in islice(rows, self._skip):
                pass
        if isinstance(reader, CsvReader):
            return _column_chunks(reader.row_chunks(self._size))
        return _column_chunks(_as_columns(rows, self._size))

    def _validated(self, chunk: RowColumns, is_last: bool, bytes_read: int) -> ChunkResult:
        result = chunk_validate_columns(self._validator, *chunk)
        result.is_last = is_last
        result.bytes_read = bytes_read
        self._profile_into(result)
        return result

    def _profile_into(self, result: ChunkResult) -> None:
        """Add the chunk's profile (processing.quality.profile), when asked for, where it was validated."""
        if self._profile:
            # The rows' staging-table lines, one a line (values escape their line breaks).
            copies = result.valid.copy_text().decode().split("\n")[:-1] if len(result.valid) else []
            result.profile = chunk_profile(self._validator.schema, copies, use_polars=columnar_module().polars_usable())

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
            for chunk, is_last in self._read():
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
            for chunk, is_last in self._read():
                bytes_read = self._reader.bytes.count
                owner = chunk_owner(index, len(outs))
                if owner == 0:
                    outs[0].send(self._validated(chunk, is_last, bytes_read))
                else:
                    outs[owner].send(_RawChunk(*chunk, is_last, bytes_read))
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
                result = chunk_validate_columns(self._validator, item.lines, item.values, item.errors, item.raws)
                result.is_last = item.is_last
                result.bytes_read = item.bytes_read
                self._profile_into(result)
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
