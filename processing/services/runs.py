"""Operations on runs. Every door (command, admin, API, schedule) calls these."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ingestion.audit import audit_record
from ingestion.models import AuditAction, Dataset, RawFile, Source
from ingestion.services.datasets import dataset_schema_require
from ingestion.services.raw_files import ByteSource, raw_file_receive
from ingestion.storage import data_storage

from .. import lifecycle
from ..logcontext import run_context
from ..models import FINISHED_STATUSES, LOADED_STATUSES, Run, RunStatus, RunTrigger
from ..pipeline import ProgressCallback, pipeline_execute
from ..pipeline.output import work_files_sweep
from ..pipeline.run import ClaimLost
from .broker import BrokerUnavailable, _task_enqueue_later, task_enqueue
from .sources import SourceBusy, _pull_run_create, run_fetch, source_pull

logger = logging.getLogger(__name__)


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


def earlier_load(run: Run) -> Run | None:
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
        earlier = earlier_load(run)
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


# A run committed this recently may still be on its way to the broker (its
# door sends it right after the commit): the reaper leaves it to its door.
SEND_GRACE = timedelta(seconds=60)


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
    # A stream run has no file to resume: the next consumer of its source ends it (services.streams).
    running = Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale).exclude(trigger=RunTrigger.STREAM)
    for run in running.select_related("raw_file"):
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


def source_pull_now(*, source: Source, user: Any = None, trigger: str = RunTrigger.COMMAND) -> Run:
    """Pull ``source`` and process its records in this process; returns the finished run."""
    run = _pull_run_create(source=source, user=user, trigger=trigger)
    finished = run_execute(run_id=run.pk)
    assert finished is not None  # we just created it, nobody else can hold it
    return finished


def source_pull_scheduled(*, source_id: int) -> Run | None:
    """A scheduled pull: skipped while the source is disabled or a pull of it has not finished."""
    source = Source.objects.filter(pk=source_id).select_related("dataset").first()
    if source is None or not source.enabled:
        return None
    try:
        return source_pull_now(source=source, trigger=RunTrigger.SCHEDULE)
    except SourceBusy:
        logger.info("source %s: the previous pull has not finished; skipping this one", source.name)
    except ValidationError as exc:  # e.g. the dataset has no schema yet
        logger.warning("source %s: scheduled pull not started: %s", source.name, "; ".join(exc.messages))
    return None
