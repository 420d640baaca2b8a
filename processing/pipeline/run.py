"""The pipeline's driver: one function that runs the steps over one file."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ingestion.models import Dataset, RawFile, SchemaVersion
from ingestion.reader import CsvStructureError, reader_open
from ingestion.schema import SchemaSpec
from ingestion.selectors import schema_spec
from ingestion.services.sources import source_watermark_set
from ingestion.storage import data_storage, storage_failure

from ..models import LOADED_STATUSES, Run, RunStatus
from ..record_indexes import record_indexes_sync
from ..record_tables import record_table_create, table_exists
from .chunks import ChunkResult, ValidatedChunks
from .header import (
    delimiter_hint,
    encoding_check,
    header_size_check,
    summary_headers,
    unknown_columns_listed,
    unnamed_columns_check,
    unnamed_positions,
)
from .load import KEY_FIELD, SeenValues, dataset_is_empty, records_load, rejected_store
from .output import ProcessedWriter
from .quality import RunQualityTracker
from .validate import ROW_ERRORS, HeaderError, RowValidator, columns_map

logger = logging.getLogger(__name__)

# The reject-rate breaker waits for this many rows before judging mid-file.
BREAKER_MIN_ROWS = 100

ProgressCallback = Callable[[Run], None]


class RunEnd(Protocol):
    """Records the outcome the pipeline reached on its run: ``processing.lifecycle.run_finish``.

    The pipeline decides how a run ends; writing that end (status, error,
    archive, scratch space, notification) belongs to the run's lifecycle,
    which the caller passes in.
    """

    def __call__(self, run: Run, status: str, *, error: str = ..., dry_run: bool = ..., crashed: bool = ...) -> None:
        """End ``run`` with ``status``; ``crashed`` when an unexpected error ended it."""


class PipelineAbort(Exception):
    """Ends a run early with a status and a reason (not a crash)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _deduplicate(validator: RowValidator, seen: SeenValues, result: ChunkResult) -> None:
    """Step 4: reject rows whose key or unique value came earlier in the file."""
    keys = result.valid.keys
    distinct_keys = list(dict.fromkeys(keys))
    earlier: dict[str, dict[str, int]] = {KEY_FIELD: seen.lookup(KEY_FIELD, distinct_keys)}
    if not validator.unique_fields and not earlier[KEY_FIELD] and len(distinct_keys) == len(keys):
        # The usual chunk: keys new to the run and to each other, nothing to reject.
        seen.add_column(KEY_FIELD, keys, result.valid.lines)
        return
    valid = result.valid
    for f in validator.unique_fields:
        values = [u[f] for u in valid.unique_values() if f in u]
        earlier[f] = seen.lookup(f, list(dict.fromkeys(values)))
    dropped: list[int] = []
    new_entries: list[tuple[str, str, int]] = []
    for i, (key, line, unique_values) in enumerate(zip(keys, valid.lines, valid.unique_values(), strict=True)):
        errors: dict[str, list[str]] = {}
        first = earlier[KEY_FIELD].get(key)
        if first is not None:
            errors[ROW_ERRORS] = [f"duplicate key, first seen on line {first}"]
        for f, value in unique_values.items():
            line_seen = earlier[f].get(value)
            if line_seen is not None:
                errors[f] = [f"duplicate value {value!r}, first seen on line {line_seen}"]
        if errors:
            result.rejected.append(validator.reject(line, valid[i].values, errors))
            dropped.append(i)
            continue
        earlier[KEY_FIELD][key] = line
        new_entries.append((KEY_FIELD, key, line))
        for f, value in unique_values.items():
            earlier[f][value] = line
            new_entries.append((f, value, line))
    if dropped:
        result.valid = valid.drop(dropped)
    result.rejected.sort(key=lambda r: r.line)
    seen.add(new_entries)


def _breaker(run: Run, threshold: float | None, result: ChunkResult, is_last: bool) -> None:
    if threshold is None:
        return
    read = run.rows_read + result.rows
    rejected = run.rows_rejected + len(result.rejected)
    if read and (read >= BREAKER_MIN_ROWS or is_last) and rejected / read > threshold:
        raise PipelineAbort(
            RunStatus.FAILED,
            f"rejected {rejected / read:.1%} of rows ({rejected} of {read}), "
            f"over the dataset's threshold of {threshold:.1%}",
        )


COUNTER_FIELDS = [
    "rows_read",
    "rows_valid",
    "rows_rejected",
    "rows_inserted",
    "rows_updated",
    "rows_unchanged",
    "bytes_read",
    "checkpoint",
    "heartbeat_at",
]


def _watermark_commit(run: Run) -> None:
    """A pull's new watermark, stored in the transaction that commits its last records."""
    watermark = (run.summary.get("pull") or {}).get("watermark")
    if run.source_id is not None and watermark:
        source_watermark_set(source_id=run.source_id, watermark=watermark)


class ClaimLost(Exception):
    """Another worker has taken this run over: stop at once and leave the run, its files and tables to it."""


def _check_claim(run: Run, dry_run: bool) -> None:
    """At each chunk, inside its transaction: is the run still ours, and not to be cancelled?

    The row lock orders this chunk's commit and another worker's claim (which
    bumps ``attempts``): a worker whose heartbeat went stale while it was still
    alive, and whose run was taken over meanwhile, stops here instead of
    loading the same rows a second time.
    """
    state = Run.objects.select_for_update().filter(pk=run.pk).values("status", "attempts", "cancel_requested").first()
    if not dry_run and (state is None or state["status"] != RunStatus.RUNNING or state["attempts"] != run.attempts):
        raise ClaimLost(f"run {run.pk} was taken over by another worker (attempt {state and state['attempts']})")
    if state is not None and state["cancel_requested"]:
        raise PipelineAbort(RunStatus.CANCELLED, "cancelled on request")


def _schema_of(run: Run) -> SchemaSpec:
    """The schema a run validates with: the dataset's current one, the one its table has.

    A run queued before the schema changed takes the new version, as long as
    it has loaded nothing yet; one that already loaded rows under the old
    version fails with a clear reason (a retry reads the file again under
    the new one).
    """
    assert run.schema is not None  # every run is created under its dataset's schema (dataset_schema_require)
    current = Dataset.objects.filter(pk=run.dataset_id).values_list("current_schema_id", flat=True).first()
    if current is not None and current != run.schema_id:
        if int(run.checkpoint.get("rows", 0)):
            raise PipelineAbort(RunStatus.FAILED, _schema_changed(run, current))
        queued_under = run.schema.number
        run.schema = SchemaVersion.objects.get(pk=current)
        # Said in the run's summary: the file was queued under another version.
        run.summary["schema_changed_before_start"] = {"queued_under": queued_under, "loaded_under": run.schema.number}
        run.save(update_fields=["schema", "summary"])
    spec = schema_spec(run.schema)
    if not table_exists(run.dataset.slug):
        record_table_create(run.dataset.slug, spec, run.dataset_id)
    return spec


def _schema_changed(run: Run, current: int) -> str:
    number = SchemaVersion.objects.filter(pk=current).values_list("number", flat=True).first()
    assert run.schema is not None  # every run is created under its dataset's schema (dataset_schema_require)
    return (
        f"the dataset's schema changed from version {run.schema.number} to {number} while this run was loading; "
        "the rows it loaded were checked against the new version, retry the run to load the rest"
    )


def _check_schema(run: Run) -> None:
    """Stop at a chunk when the dataset's schema changed since the run started.

    The row lock (a share lock: runs do not wait for each other) orders this
    chunk's commit and a schema change, which locks the dataset row to
    write its new version and alter the table.
    """
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cur:
        cur.execute(f"SELECT current_schema_id FROM ingestion_dataset WHERE id = %s{lock}", [run.dataset_id])
        found = cur.fetchone()
    if found is not None and found[0] != run.schema_id:
        raise PipelineAbort(RunStatus.FAILED, _schema_changed(run, found[0]))


def pipeline_execute(
    run: Run,
    *,
    end: RunEnd,
    dry_run: bool = False,
    on_chunk: ProgressCallback | None = None,
) -> Run:
    """Run the pipeline over ``run.raw_file`` and leave the run finished, through ``end``.

    Picks up after ``run.checkpoint`` when the run was interrupted. Problems
    with the file end the run as ``failed`` with a reason; unexpected errors
    propagate after the run is ended ``failed`` (unless ``dry_run``, where
    the caller rolls everything back).
    """
    assert run.raw_file is not None  # given when the run was created, or fetched by run_fetch first
    raw_file: RawFile = run.raw_file
    seen = SeenValues(run.pk)
    writer: ProcessedWriter | None = None
    try:
        schema = _schema_of(run)
        # Profile and checks (processing.quality): stored with the run's end, in its transaction.
        quality = RunQualityTracker(run, schema)
        end = quality.ended(end)
        if not dry_run:
            # Before loading, so a first load fills the indexes as it goes.
            record_indexes_sync(run.dataset, schema)
        try:
            encoding_check(raw_file)
        except HeaderError as exc:
            raise PipelineAbort(RunStatus.FAILED, str(exc)) from None
        with data_storage().open(raw_file.storage_name, "rb") as fh:
            reader = reader_open(fh, format=raw_file.format, encoding=raw_file.encoding, delimiter=raw_file.delimiter)
            header = reader.read_header()
            if header is None:
                raise PipelineAbort(RunStatus.FAILED, "the file is empty: there is no header row")
            if not header and raw_file.format == RawFile.Format.NDJSON:
                # No record holds any key: an empty pull or push is an empty run, not a bad file.
                header = reader.header = [f.headers[0] for f in schema.fields]
            unnamed = unnamed_positions(header)
            try:
                header_size_check(header, settings.DATAFLOW["MAX_COLUMNS"])
                try:
                    columns = columns_map(schema, header)
                except HeaderError as exc:
                    hint = delimiter_hint(raw_file, schema, header)
                    raise HeaderError(f"{exc}; {hint}" if hint else str(exc)) from None
                unnamed_columns_check(raw_file, unnamed)
            except HeaderError as exc:
                raise PipelineAbort(RunStatus.FAILED, str(exc)) from None
            run.summary.update(
                {
                    # Printable (names may hold undecodable bytes) and bounded, with the count.
                    "headers": summary_headers(columns.headers),
                    "headers_total": len(columns.headers),
                    # Bounded: a wide file must not make a huge run document.
                    "unknown_columns": unknown_columns_listed(columns.unknown, unnamed),
                    "missing_optional_columns": list(columns.missing_optional),
                }
            )
            validator = RowValidator(
                schema, columns, settings.DATAFLOW["MAX_FIELD_SIZE"], with_json=connection.vendor != "postgresql"
            )
            stop = quality.gate(validator, header)
            if stop is not None:
                raise PipelineAbort(*stop)
            seen.create(fields=1 + len(validator.unique_fields))
            if not dry_run:
                writer = ProcessedWriter(
                    dataset_slug=run.dataset.slug,
                    run_id=run.pk,
                    fields=[f.name for f in schema.fields],
                    resume_at=int(run.checkpoint.get("processed_bytes", 0)),
                )
                if writer.incomplete:
                    run.summary["processed_file_incomplete"] = True
            skip = int(run.checkpoint.get("rows", 0))
            threshold = run.dataset.reject_threshold
            # A first load (not a resumed one: its earlier chunks are records now).
            into_empty = dataset_is_empty(run.dataset)
            # Steps 1-3 run a chunk ahead of steps 4-6 (see chunks.py).
            with ValidatedChunks(
                reader, validator, None, run.chunk_size, skip=skip, profile=quality.profiling
            ) as chunks:
                for result in chunks:
                    tripped: PipelineAbort | None = None
                    with transaction.atomic():
                        _check_claim(run, dry_run)
                        _check_schema(run)
                        _deduplicate(validator, seen, result)
                        try:
                            _breaker(run, threshold, result, result.is_last)
                        except PipelineAbort as abort:
                            tripped = abort
                        if tripped is not None:
                            # Keep this chunk's rejected rows and counters (committed with
                            # the block), but not its valid rows; the run stops below.
                            rejected_store(run, result.rejected)
                            run.summary["not_loaded"] = len(result.valid)
                            _count(run, result, writer=None, loaded=False)
                        else:
                            counts = records_load(run, schema, result.valid, into_empty=into_empty)
                            quality.merge(result.profile)
                            rejected_store(run, result.rejected)
                            run.rows_inserted += counts.inserted
                            run.rows_updated += counts.updated
                            run.rows_unchanged += counts.unchanged
                            _count(run, result, writer=writer, loaded=True)
                            if result.is_last and not dry_run:
                                _watermark_commit(run)
                    if tripped is not None:
                        raise tripped
                    if on_chunk is not None:
                        on_chunk(run)
            if run.rows_read == 0:
                run.summary["note"] = "the file has a header but no data rows"
        status = RunStatus.PARTIALLY_SUCCEEDED if run.rows_rejected else RunStatus.SUCCEEDED
        _finish(run, status, "", writer, end, dry_run)
    except ClaimLost:
        # Not ours any more: the new owner resumes from the scratch file and the
        # seen table, so leave both (and the run row) exactly as they are.
        if writer is not None:
            writer.fh.close()
        raise
    except PipelineAbort as abort:
        _finish(run, abort.status, abort.message, writer, end, dry_run)
    except CsvStructureError as exc:
        _finish(run, RunStatus.FAILED, str(exc), writer, end, dry_run)
    except UnicodeError as exc:
        # Bad bytes become rejected rows; this is a file the codec cannot read
        # at all (e.g. UTF-16 without a byte-order mark).
        message = f"the file cannot be read as {raw_file.encoding}: {exc}"
        _finish(run, RunStatus.FAILED, message, writer, end, dry_run)
    except Exception as exc:
        interrupted = _interruption_of(exc)
        if interrupted is not None:
            # The job queue's time limit (or a shutdown) cut a statement short and
            # Django, leaving the chunk's transaction, turned it into a database
            # error. It is still the interruption: the caller records it.
            _connection_replace()
            raise interrupted from None
        if dry_run:
            raise
        logger.exception("run %s crashed", run.pk)
        _connection_replace(only_if_broken=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            message = f"the disk is full: {exc}"
        elif (failure := storage_failure(exc)) is not None:
            message = failure
        else:
            message = f"internal error: {type(exc).__name__}: {exc}"
        if writer is not None:
            # A crash (a full disk, a lost connection) keeps no processed file: it
            # may be cut short, and the space may be what the disk is short of.
            writer.discard()
        _finish(run, RunStatus.FAILED, message, writer, end, dry_run, crashed=True)
        raise
    return run


def _interruption_of(exc: BaseException) -> BaseException | None:
    """The interruption (not an ``Exception``: a time limit, a shutdown) ``exc`` was raised while handling."""
    seen: set[int] = set()
    context: BaseException | None = exc
    while context is not None and id(context) not in seen:
        if not isinstance(context, Exception):
            return context
        seen.add(id(context))
        context = context.__context__
    return None


def _connection_replace(*, only_if_broken: bool = False) -> None:
    """Close the connection a statement was cut short on, so the next query opens a fresh one.

    Not inside an outer transaction (a dry run): that one belongs to the caller.
    """
    if connection.in_atomic_block or connection.connection is None:
        return
    if only_if_broken and connection.is_usable():
        return
    connection.close()


def _count(run: Run, result: ChunkResult, *, writer: ProcessedWriter | None, loaded: bool) -> None:
    """Add a chunk to the run's counters and checkpoint, inside its transaction."""
    run.rows_read += result.rows
    run.rows_valid += len(result.valid)
    run.rows_rejected += len(result.rejected)
    run.bytes_read = result.bytes_read
    run.checkpoint = {
        "rows": int(run.checkpoint.get("rows", 0)) + result.rows,
        "line": result.last_line,
        "processed_bytes": writer.write(result.valid)
        if writer and loaded
        else run.checkpoint.get("processed_bytes", 0),
    }
    run.heartbeat_at = timezone.now()
    run.save(update_fields=COUNTER_FIELDS)


def _finish(
    run: Run,
    status: str,
    error: str,
    writer: ProcessedWriter | None,
    end: RunEnd,
    dry_run: bool,
    *,
    crashed: bool = False,
) -> None:
    # A failed or cancelled run keeps a processed file only for rows it loaded.
    if writer is not None and not writer.finished:
        loaded = run.rows_inserted + run.rows_updated + run.rows_unchanged
        if status in LOADED_STATUSES or loaded:
            run.summary["processed_file"] = writer.publish()
        else:
            writer.discard()
    end(run, status, error=error, dry_run=dry_run, crashed=crashed)
