"""Operations on runs. Every door (command, admin, API, schedule) calls these."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ingestion.audit import audit_record
from ingestion.csvwrite import csv_writer
from ingestion.models import AuditAction, Dataset, RawFile
from ingestion.reader import CsvReader, HeaderTooLarge, reader_open
from ingestion.schema import SchemaSpec
from ingestion.selectors import schema_spec
from ingestion.services import ByteSource, dataset_schema_require, raw_file_discard, raw_file_receive
from ingestion.storage import data_storage

from . import lifecycle
from .logcontext import run_context
from .models import FINISHED_STATUSES, LOADED_STATUSES, RejectedRow, Run, RunStatus, RunTrigger
from .pipeline import ProgressCallback, pipeline_execute
from .pipeline.header import unnamed_columns
from .pipeline.output import work_files_sweep
from .pipeline.run import ClaimLost
from .pipeline.validate import columns_match, printable
from .sources import run_fetch, source_pull

logger = logging.getLogger(__name__)


class _Rollback(Exception):
    pass


def run_create(
    *,
    dataset: Dataset,
    raw_file: RawFile,
    trigger: str = RunTrigger.COMMAND,
    user: Any = None,
    force: bool = False,
    chunk_size: int | None = None,
    parent: Run | None = None,
) -> Run:
    """Create a queued run of ``raw_file`` under the dataset's current schema.

    A run that processes a pulled file again (retry, replay) stays a run of
    its source, with the pull's summary, so it commits the pull's watermark.
    """
    dataset_schema_require(dataset, refresh=("current_schema", "reject_threshold", "delimiter"))
    if chunk_size is not None and chunk_size < 1:
        raise ValidationError("The chunk size must be at least 1.")
    if not data_storage().exists(raw_file.storage_name):
        # Fail now, at the door, rather than later in a worker.
        raise ValidationError(f"The stored file {raw_file.storage_name!r} is missing.")
    run = Run.objects.create(
        dataset=dataset,
        raw_file=raw_file,
        schema_id=dataset.current_schema_id,
        trigger=trigger,
        started_by=user if getattr(user, "pk", None) else None,
        forced=force,
        chunk_size=chunk_size or settings.DATAFLOW["CHUNK_SIZE"],
        bytes_total=raw_file.size,
        parent=parent,
        source_id=parent.source_id if parent is not None else None,
        summary={"pull": parent.summary["pull"]} if parent is not None and parent.summary.get("pull") else {},
    )
    if parent is None:
        audit_record(
            action=AuditAction.FILE_UPLOADED,
            actor=user,
            dataset=dataset,
            obj=run,
            details={
                "file": raw_file.original_name,
                "sha256": raw_file.sha256,
                "size": raw_file.size,
                "trigger": trigger,
            },
        )
    return run


def _earlier_load(run: Run) -> Run | None:
    assert run.raw_file is not None  # asked once the run has its file (given, or fetched by run_fetch)
    return (
        Run.objects.filter(
            dataset_id=run.dataset_id,
            schema_id=run.schema_id,
            raw_file__sha256=run.raw_file.sha256,
            status__in=LOADED_STATUSES,
            noop_of__isnull=True,
        )
        .exclude(pk=run.pk)
        .order_by("finished_at")
        .first()
    )


def run_execute(*, run_id: int, resume: bool = False, on_chunk: ProgressCallback | None = None) -> Run | None:
    """Claim a run and process it; None when it was not ours to process.

    ``resume=True`` also takes a run left ``running`` by a worker that died;
    it carries on from its checkpoint.
    """
    with run_context(run_id):
        if not lifecycle.run_start(run_id=run_id, resume=resume):
            logger.info("run not claimed: already taken or ended")
            return None
        # The run's end (and its notification) is written by processing.lifecycle on
        # every path. Anything else (a crash, the job queue's time limit, a shutdown)
        # may have cut a query short: it goes up untouched, to a caller that can
        # replace the connection (processing.tasks.run_task records the time limit).
        try:
            run = _run_execute_claimed(run_id, on_chunk)
        except ClaimLost as lost:
            logger.warning("run stopped: %s", lost)
            return None
        logger.info(
            "run %s",
            run.status,
            extra={
                "dataset": run.dataset.slug,
                "status": run.status,
                "rows_read": run.rows_read,
                "rows_rejected": run.rows_rejected,
                "rows_inserted": run.rows_inserted,
                "rows_updated": run.rows_updated,
                "attempt": run.attempts,
            },
        )
        return run


def _run_execute_claimed(run_id: int, on_chunk: ProgressCallback | None) -> Run:
    run = Run.objects.select_related("dataset", "raw_file", "schema", "source").get(pk=run_id)
    if run.attempts > settings.RUN_MAX_ATTEMPTS:
        lifecycle.run_give_up(run)
        return run
    if run.raw_file_id is None and not run_fetch(run):
        return run
    if not run.forced and not run.checkpoint:
        earlier = _earlier_load(run)
        if earlier is not None:
            lifecycle.run_finish_noop(run, earlier=earlier)
            return run
    return pipeline_execute(run, end=lifecycle.run_finish, on_chunk=on_chunk)


def file_ingest(
    *,
    dataset: Dataset,
    source: ByteSource,
    original_name: str = "",
    user: Any = None,
    trigger: str = RunTrigger.COMMAND,
    force: bool = False,
    chunk_size: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    on_chunk: ProgressCallback | None = None,
) -> Run:
    """Receive a file and run the pipeline over it now."""
    raw_file = raw_file_receive(
        dataset=dataset, source=source, original_name=original_name, user=user, encoding=encoding, delimiter=delimiter
    )
    run = run_create(dataset=dataset, raw_file=raw_file, trigger=trigger, user=user, force=force, chunk_size=chunk_size)
    result = run_execute(run_id=run.pk, on_chunk=on_chunk)
    assert result is not None  # we just created it, nobody else can hold it
    return result


@dataclass
class Preview:
    """What ingesting a file would do, computed without keeping anything."""

    status: str
    error: str
    encoding: str
    delimiter: str
    rows_read: int
    valid: int
    rejected: int
    inserted: int
    updated: int
    unchanged: int
    summary: dict[str, Any]
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    noop_of: int | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    # Where the encoding and delimiter came from (RawFile.dialect()): source, confidence, display text.
    dialect: dict[str, Any] = field(default_factory=dict)


def file_preview(
    *,
    dataset: Dataset,
    source: ByteSource,
    original_name: str = "",
    encoding: str | None = None,
    delimiter: str | None = None,
    force: bool = False,
    chunk_size: int | None = None,
    max_rejected: int = 20,
) -> Preview:
    """A dry run of a file that is not kept: receive it, preview it, delete it."""
    raw_file = raw_file_receive(
        dataset=dataset, source=source, original_name=original_name, encoding=encoding, delimiter=delimiter
    )
    try:
        return raw_file_preview(raw_file=raw_file, force=force, chunk_size=chunk_size, max_rejected=max_rejected)
    finally:
        raw_file_discard(raw_file=raw_file)


def raw_file_preview(
    *,
    raw_file: RawFile,
    force: bool = False,
    chunk_size: int | None = None,
    max_rejected: int = 20,
) -> Preview:
    """A dry run of a stored file: the full pipeline inside a transaction that is rolled back.

    Counts are exact (duplicates across chunks included) and nothing is kept.
    """
    preview: Preview | None = None
    dataset = raw_file.dataset
    try:
        with transaction.atomic():
            run = run_create(dataset=dataset, raw_file=raw_file, force=force, chunk_size=chunk_size)
            earlier = None if force else _earlier_load(run)
            if earlier is None:
                run = pipeline_execute(run, end=lifecycle.run_finish, dry_run=True)
            else:
                run.summary = {"note": f"this file was already loaded by run {earlier.pk}; nothing to do"}
            assert run.schema is not None  # run_create refuses a dataset without a schema
            rejected = [
                {"line": r.line_number, "errors": r.errors, "raw": r.raw}
                for r in RejectedRow.objects.filter(run=run).order_by("line_number")[:max_rejected]
            ]
            preview = Preview(
                status=run.status if earlier is None else RunStatus.SUCCEEDED,
                error=run.error,
                encoding=raw_file.encoding,
                delimiter=raw_file.delimiter,
                rows_read=run.rows_read,
                valid=run.rows_valid,
                rejected=run.rows_rejected,
                inserted=run.rows_inserted,
                updated=run.rows_updated,
                unchanged=run.rows_unchanged,
                summary=run.summary,
                rejected_rows=rejected,
                noop_of=earlier.pk if earlier else None,
                columns=raw_file_columns(raw_file=raw_file, schema=schema_spec(run.schema)),
                dialect=raw_file.dialect(),
            )
            raise _Rollback
    except _Rollback:
        pass
    assert preview is not None
    return preview


def raw_file_columns(*, raw_file: RawFile, schema: SchemaSpec) -> list[dict[str, Any]]:
    """How the file's header maps to the schema: one entry per field, then unknown columns.

    Empty when the file cannot be read (its encoding was not decided, or its header is over the caps).
    """
    if raw_file.encoding_confidence == "unsure" or not raw_file.encoding:
        return []
    with data_storage().open(raw_file.storage_name, "rb") as fh:
        reader = reader_open(fh, format=raw_file.format, encoding=raw_file.encoding, delimiter=raw_file.delimiter)
        try:
            header = reader.read_header() or []
        except HeaderTooLarge:
            return []
    match = columns_match(schema, header)
    columns: list[dict[str, Any]] = []
    for f in schema.fields:
        index = match.positions[f.name]
        columns.append(
            {
                "field": f.name,
                "type": f.type,
                "required": f.required,
                "header": printable(header[index]) if index is not None else None,
                "status": "mapped" if index is not None else ("missing" if f.required else "absent"),
            }
        )
    columns.extend(
        {"field": None, "type": None, "required": False, "header": printable(h), "status": "unknown"}
        for h in match.unknown
    )
    columns.extend(unnamed_columns(header))
    return columns


# --- The run queue ---------------------------------------------------------------
#
# The Run row is the outbox of its task: ``enqueued_at`` says when the task was
# last handed to the broker. When the broker is down the run stays queued with
# no ``enqueued_at``, and the reaper sends it once the broker answers again; a
# task that was handed over but never started (lost, or discarded by a worker
# whose SECRET_KEY differs) is sent again after RUN_REQUEUE_AFTER seconds.
# Sending twice is harmless: a worker claims the run with a conditional update,
# so a second delivery finds it taken or ended and does nothing.

# A run committed this recently may still be on its way to the broker (its
# door sends it right after the commit): the reaper leaves it to its door.
SEND_GRACE = timedelta(seconds=60)


class BrokerUnavailable(Exception):
    """The job queue refused a run's task. The run is kept, queued: the reaper sends it when the queue is back.

    Not a ``ValidationError``: nothing is wrong with the request, and the run exists.
    """

    # When to ask again: the reaper, which sends waiting runs, passes every minute.
    retry_after = 60

    def __init__(self, *, run_id: int, cause: BaseException) -> None:
        self.run_id = run_id
        outcome = (
            f"Run {run_id} is kept queued and will be sent to a worker when the queue is back; "
            "there is no need to send it again."
        )
        # For API clients: without the broker's address, which the cause names.
        self.public_message = f"The job queue is unavailable. {outcome}"
        reason = " ".join(f"{type(cause).__name__}: {cause}".split())
        super().__init__(f"The job queue is unavailable ({reason[:300]}). {outcome}")


def task_enqueue(run_id: int) -> None:
    """Hand a committed run's task to the job queue and note it on the run.

    Raises ``BrokerUnavailable`` when the broker refuses it; the run stays
    queued without ``enqueued_at`` and the reaper sends it on a later pass.
    """
    from django_q.tasks import async_task

    try:
        async_task("processing.tasks.run_task", run_id, task_name=f"run-{run_id}", group="runs")
    except Exception as exc:  # whatever the broker raises: redis.ConnectionError, a database error, …
        logger.warning("run %s: the job queue refused its task: %s", run_id, exc)
        Run.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(enqueued_at=None)
        raise BrokerUnavailable(run_id=run_id, cause=exc) from exc
    Run.objects.filter(pk=run_id).update(enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1)


def _task_enqueue_later(run_id: int) -> None:
    """``task_enqueue`` for the reaper: a refusal leaves the run to its next pass."""
    with contextlib.suppress(BrokerUnavailable):
        task_enqueue(run_id)


def run_enqueue(
    *,
    dataset: Dataset,
    raw_file: RawFile,
    trigger: str,
    user: Any = None,
    force: bool = False,
    chunk_size: int | None = None,
    parent: Run | None = None,
) -> Run:
    """Create a queued run and hand its id to the workers once it is committed.

    Every door (admin, API, command, schedule) starts background runs here.
    """
    with transaction.atomic():
        run = run_create(
            dataset=dataset,
            raw_file=raw_file,
            trigger=trigger,
            user=user,
            force=force,
            chunk_size=chunk_size,
            parent=parent,
        )
        transaction.on_commit(partial(task_enqueue, run.pk))
    return run


def file_enqueue(
    *,
    dataset: Dataset,
    source: ByteSource,
    original_name: str = "",
    user: Any = None,
    trigger: str = RunTrigger.COMMAND,
    force: bool = False,
    chunk_size: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Run:
    """Receive a file and queue a run for it."""
    raw_file = raw_file_receive(
        dataset=dataset, source=source, original_name=original_name, user=user, encoding=encoding, delimiter=delimiter
    )
    return run_enqueue(
        dataset=dataset, raw_file=raw_file, trigger=trigger, user=user, force=force, chunk_size=chunk_size
    )


def run_cancel(*, run: Run, user: Any = None) -> Run:
    """Cancel a run: a queued run at once, a running one at its next chunk boundary."""
    cancelled = lifecycle.run_cancel(run)
    audit_record(
        action=AuditAction.RUN_CANCELLED, actor=user, dataset=run.dataset, obj=run, details={"status": cancelled.status}
    )
    return cancelled


def run_retry(*, run: Run, user: Any = None, trigger: str = RunTrigger.ADMIN) -> Run:
    """Start a new run, linked to a failed or cancelled one, from its archived file."""
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise ValidationError(f"Only failed or cancelled runs can be retried; run {run.pk} is {run.status}.")
    if run.raw_file_id is None and run.source is not None:
        # The pull itself failed: pull again (the watermark has not moved).
        new_run = source_pull(source=run.source, user=user, trigger=trigger, parent=run)
    elif run.raw_file is None:
        raise ValidationError(f"Run {run.pk} has no file to retry.")
    else:
        new_run = run_enqueue(
            dataset=run.dataset,
            raw_file=run.raw_file,
            trigger=trigger,
            user=user,
            chunk_size=run.chunk_size,
            parent=run,
        )
    audit_record(
        action=AuditAction.RUN_RETRIED,
        actor=user,
        dataset=run.dataset,
        obj=new_run,
        details={"retry_of": run.pk, "trigger": trigger},
    )
    return new_run


def run_replay(*, run: Run, user: Any = None, trigger: str = RunTrigger.ADMIN) -> Run:
    """Process a run's archived file again under the dataset's current schema."""
    if run.status not in FINISHED_STATUSES:
        raise ValidationError(f"Run {run.pk} is still {run.status}; replay it once it has ended.")
    if run.raw_file is None:
        raise ValidationError(f"Run {run.pk} has no file to replay.")
    new_run = run_enqueue(
        dataset=run.dataset,
        raw_file=run.raw_file,
        trigger=trigger,
        user=user,
        force=True,
        chunk_size=run.chunk_size,
        parent=run,
    )
    audit_record(
        action=AuditAction.RUN_REPLAYED,
        actor=user,
        dataset=run.dataset,
        obj=new_run,
        details={"replay_of": run.pk, "trigger": trigger},
    )
    return new_run


def run_timed_out(*, run_id: int, timeout: int) -> Run | None:
    """End a run whose task passed the job queue's time limit: failed at once, saying so.

    Called by the task when django-q2 stops it (``Q_TIMEOUT``); None when the
    run was not running any more.
    """
    with run_context(run_id):
        run = lifecycle.run_fail_running(
            run_id=run_id,
            error=f"the run took longer than Q_TIMEOUT={timeout} s and was stopped; the rows of the chunks it "
            "committed are loaded. Raise Q_TIMEOUT (and Q_RETRY above it) for files this large, then retry it.",
        )
        if run is not None:
            logger.warning("run stopped by the job queue's time limit of %ss", timeout)
        return run


def runs_reap() -> dict[str, int]:
    """The every-minute sweep of the run queue and its scratch space.

    - A ``running`` run whose heartbeat is older than ``RUN_HEARTBEAT_TIMEOUT``
      lost its worker: queue it again (it resumes from its checkpoint), or
      fail it after ``RUN_MAX_ATTEMPTS`` starts.
    - A ``queued`` run whose task never reached the broker, or reached it more
      than ``RUN_REQUEUE_AFTER`` seconds ago without a worker starting it, is
      sent again.
    - Scratch files of runs that can no longer use them are removed.
    """
    counts = _runs_reap_stale()
    counts["resent"] = _runs_resend()
    removed = work_files_sweep(_runs_using_work_files, untouched_for=settings.RUN_HEARTBEAT_TIMEOUT)
    if removed:
        logger.warning("removed the scratch files of ended runs %s", ", ".join(map(str, removed)))
    counts["scratch_removed"] = len(removed)
    return counts


def _runs_reap_stale() -> dict[str, int]:
    stale = timezone.now() - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    requeued = failed = 0
    for run in Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale).select_related("raw_file"):
        with transaction.atomic():
            if run.attempts >= settings.RUN_MAX_ATTEMPTS:
                if lifecycle.run_give_up(run, stale_before=stale):
                    failed += 1
            elif lifecycle.run_requeue(run, stale_before=stale):
                transaction.on_commit(partial(_task_enqueue_later, run.pk))
                requeued += 1
        logger.warning("run %s had a stale heartbeat (attempt %s)", run.pk, run.attempts)
    return {"requeued": requeued, "failed": failed}


def _runs_resend() -> int:
    now = timezone.now()
    unsent = Q(enqueued_at__isnull=True, created_at__lt=now - SEND_GRACE)
    lost = Q(enqueued_at__lt=now - timedelta(seconds=settings.RUN_REQUEUE_AFTER))
    resent = 0
    waiting = Run.objects.filter(unsent | lost, status=RunStatus.QUEUED).order_by("pk")
    for run_id in waiting.values_list("pk", flat=True):
        try:
            task_enqueue(run_id)
        except BrokerUnavailable:
            logger.warning("the job queue is still unavailable: queued runs wait for the reaper's next pass")
            break
        logger.info("run %s: sent to the job queue again", run_id)
        resent += 1
    return resent


def _runs_using_work_files(run_ids: Iterable[int]) -> set[int]:
    """Runs that may still write their scratch file: running, or queued to resume from it."""
    ids = list(run_ids)
    return set(Run.objects.filter(pk__in=ids).exclude(status__in=FINISHED_STATUSES).values_list("pk", flat=True))


_LOSSY_ERRORS = (
    "contains a NUL byte",
    "contains bytes that are not valid",
    "contains a lone surrogate",
    "characters long, over the limit",
)
_PLACEHOLDER = re.compile(r"\u2400|\\x[0-9a-f]{2}|\\ud[89a-f][0-9a-f]{2}")


def rejected_row_is_lossy(row: RejectedRow) -> bool:
    """True while a row's stored raw values are stand-ins for what the file held.

    NUL bytes, undecodable bytes and over-long values are stored in a
    printable or shortened form; loading them as they are would store the
    stand-ins as data, so such rows must be edited before they are reloaded.
    """
    messages = [m for ms in row.errors.values() for m in ms]
    if not any(marker in m for m in messages for marker in _LOSSY_ERRORS):
        return False
    values = [v for k, v in row.raw.items() if k != "__extra__" and isinstance(v, str)]
    return any(_PLACEHOLDER.search(v) or (len(v) == 201 and v.endswith("\u2026")) for v in values)


def rejected_rows_reload(
    *, run: Run, row_ids: list[int], user: Any = None, trigger: str = RunTrigger.ADMIN
) -> tuple[Run, int]:
    """Validate selected rejected rows of ``run`` again and load those that now pass.

    The rows (with any edits made to their raw values) become a small CSV
    file processed by a new run linked to ``run``, under the dataset's
    current schema. Rows that load leave quarantine; rows that still fail
    move to the new run with their new reasons, so each bad row is kept once.
    Returns the new run and how many rows were loaded.
    """
    rows = list(RejectedRow.objects.filter(run=run, pk__in=row_ids).order_by("line_number"))
    if not rows:
        raise ValidationError("Select at least one rejected row of this run.")
    lossy = [r for r in rows if rejected_row_is_lossy(r)]
    rows = [r for r in rows if r not in lossy]
    if not rows:
        raise ValidationError(
            f"{len(lossy)} selected row(s) still hold values that were replaced when they were quarantined "
            "(a NUL byte, undecodable bytes or a cut-off long value): edit those values first."
        )
    headers = list(run.summary.get("headers") or [])
    for r in rows:
        headers.extend(h for h in r.raw if h not in headers and h != "__extra__")
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(headers)
    for r in rows:
        extra = r.raw.get("__extra__") or []
        writer.writerow([str(r.raw.get(h, "")) for h in headers] + [str(v) for v in extra])
    content = buffer.getvalue().encode("utf-8")
    # Where each row starts in the new file (values may span lines).
    reader = CsvReader(io.BytesIO(content), encoding="utf-8", delimiter=",")
    reader.read_header()
    origin = {raw_row.line: r.pk for raw_row, r in zip(reader.rows(), rows, strict=True)}

    raw_file = raw_file_receive(
        dataset=run.dataset,
        source=io.BytesIO(content),
        original_name=f"run-{run.pk}-fixed-rows.csv",
        user=user,
        encoding="utf-8",
        delimiter=",",
    )
    new_run = run_create(dataset=run.dataset, raw_file=raw_file, trigger=trigger, user=user, force=True, parent=run)
    finished = run_execute(run_id=new_run.pk)
    assert finished is not None
    loaded = 0
    if finished.status in LOADED_STATUSES:
        still_rejected = set(RejectedRow.objects.filter(run=finished).values_list("line_number", flat=True))
        loaded = sum(1 for line in origin if line not in still_rejected)
        RejectedRow.objects.filter(pk__in=origin.values()).delete()
        Run.objects.filter(pk=run.pk).update(rows_fixed=F("rows_fixed") + loaded)
    finished.summary["fixed_rows_of_run"] = {"run": run.pk, "loaded": loaded, "left_lossy": len(lossy)}
    finished.save(update_fields=["summary"])
    audit_record(
        action=AuditAction.REJECTED_ROWS_FIXED,
        actor=user,
        dataset=run.dataset,
        obj=finished,
        details={"run": run.pk, "rows": len(rows), "loaded": loaded},
    )
    return finished, loaded
