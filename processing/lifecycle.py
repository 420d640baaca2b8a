"""A run's lifecycle: the only code that moves a ``Run`` from one state to another.

::

    queued ──run_start──► running ──run_finish──► succeeded | partially_succeeded | failed | cancelled
      │  ▲                  │  │
      │  └───run_requeue────┘  └──run_fail / run_give_up / run_fail_running──► failed
      └──run_cancel──► cancelled

The functions here are the only writers of a run's ``status``, ``error``,
``started_at`` and ``finished_at`` (``tests/processing/test_lifecycle.py``
holds the rest of the code to that). Every end of a run, whichever way it
comes, does what must happen once per end, in ``_release`` and
``run_finished_notify``: the run's scratch space (its work file and its
seen-values table) is removed, its raw file archived, and its notification
queued for after the commit.

Where another process may move the same run at the same time (two
deliveries of a task, the reaper and a worker, a cancel and a start), the
move is a conditional UPDATE (``filter(status=...).update(...)``): one of
them changes the row, the other finds nothing to change and leaves the run
alone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ingestion.services.raw_files import raw_file_archive

from .models import Run, RunStatus
from .notifications import run_finished_notify
from .pipeline.load import SeenValues
from .pipeline.output import work_file_remove

logger = logging.getLogger(__name__)


# --- Starting ------------------------------------------------------------------------


def run_start(*, run_id: int, resume: bool = False) -> bool:
    """Take a run for this worker; False when someone else has it or it ended.

    A conditional UPDATE, so two deliveries of the same run cannot both win.
    A ``running`` run is taken over only when its heartbeat went stale (its
    worker died), or when ``resume`` says the caller knows it is dead.
    """
    now = timezone.now()
    claimable = Q(status=RunStatus.QUEUED) | Q(
        status=RunStatus.RUNNING, heartbeat_at__lt=now - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    )
    if resume:
        claimable |= Q(status=RunStatus.RUNNING)
    claimed = Run.objects.filter(claimable, pk=run_id).update(
        status=RunStatus.RUNNING,
        started_at=Coalesce(F("started_at"), Value(now)),
        heartbeat_at=now,
        attempts=F("attempts") + 1,
    )
    return claimed == 1


def run_inline_start(**fields: Any) -> Run:
    """Create a run that is running from the start: work its caller does at once, in its own transaction.

    The check of the stored records a schema change makes (``record_schema.py``)
    is such a run: it is never queued, has no file and no scratch space.
    """
    return Run.objects.create(status=RunStatus.RUNNING, started_at=timezone.now(), **fields)


def run_inline_finish(run: Run, status: str) -> None:
    """End a run made by ``run_inline_start``, saving it whole (its caller set its counters and summary).

    It has no file to archive and no scratch space, and it notifies nobody:
    the change that made it is the caller's own action.
    """
    run.status = status
    run.finished_at = timezone.now()
    run.save()


# --- Ending a run this worker holds --------------------------------------------------


def run_finish(run: Run, status: str, *, error: str = "", dry_run: bool = False, crashed: bool = False) -> None:
    """End a run this worker holds with the outcome it reached (the pipeline's end, a cancelled pull).

    A dry run (a preview, rolled back by its caller) only has its row
    written: it keeps no archive, has no scratch space and notifies nobody.
    ``crashed`` is for a run the pipeline failed on an unexpected error:
    should even ending it fail (the database refused the summary), the
    failure and its reason are still recorded, and its scratch file freed.
    """
    if not crashed:
        _end(run, status, error, dry_run=dry_run)
        return
    try:
        _end(run, status, error, dry_run=dry_run)
    except Exception:
        logger.exception("run %s: could not finish cleanly", run.pk)
        work_file_remove(run.pk)
        Run.objects.filter(pk=run.pk).update(status=status, error=error[:5000], finished_at=timezone.now())
        _notify_read_back(run.pk)


def run_finish_noop(run: Run, *, earlier: Run) -> None:
    """End a run whose file ``earlier`` already loaded under the same schema: succeeded, nothing to do."""
    run.noop_of = earlier
    run.summary = {**run.summary, "note": f"this file was already loaded by run {earlier.pk}; nothing to do"}
    _end(run, RunStatus.SUCCEEDED, "", fields=("noop_of",))


def run_fail(run: Run, error: str) -> None:
    """End a run this worker holds as failed, for a reason found before the pipeline (its pull failed)."""
    _end(run, RunStatus.FAILED, error)


# --- Ending a run its worker could not finish ------------------------------------------


def run_give_up(run: Run, *, stale_before: datetime | None = None) -> bool:
    """Fail a run whose worker stopped responding once too often: it will never be started again.

    Called by the worker that claimed it one start too many (``stale_before``
    None), or by the reaper, for a run still ``running`` with a heartbeat
    older than ``stale_before``; False when the run moved on meanwhile.
    """
    # One transaction: nobody may see the run failed without its reason.
    with transaction.atomic():
        if stale_before is not None:
            stale = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, heartbeat_at__lt=stale_before)
            if not stale.update(status=RunStatus.FAILED):
                return False
            run.attempts += 1  # the start the worker would have made, as a claim counts it
        _end(
            run,
            RunStatus.FAILED,
            f"gave up after {run.attempts - 1} attempts: the worker processing this run stopped responding "
            f"(no heartbeat for {settings.RUN_HEARTBEAT_TIMEOUT}s)",
        )
    return True


def run_fail_running(*, run_id: int, error: str) -> Run | None:
    """Fail a ``running`` run at once, whoever holds it (the job queue stopped its task).

    None when the run was not running any more.
    """
    # One transaction, as in the reaper: nobody may see the run failed without its reason.
    with transaction.atomic():
        if not Run.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(status=RunStatus.FAILED):
            return None
        run = Run.objects.select_related("dataset", "raw_file").get(pk=run_id)
        _end(run, RunStatus.FAILED, error)
        return run


# --- Cancelling and requeueing -----------------------------------------------------


def run_cancel(run: Run) -> Run:
    """Cancel a run: a queued run at once, a running one at its next chunk boundary (its worker ends it).

    Raises ``ValidationError`` when the run has already ended.
    """
    now = timezone.now()
    queued = Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED)
    if queued.update(status=RunStatus.CANCELLED, finished_at=now, error="cancelled before it started"):
        run.refresh_from_db()
        # A queued run may be one requeued after its worker died, with scratch space to free.
        _release(run)
        run_finished_notify(run)
        return run
    if Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(cancel_requested=True):
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    raise ValidationError(f"Run {run.pk} has already ended ({run.status}); there is nothing to cancel.")


def run_requeue(run: Run, *, stale_before: datetime) -> bool:
    """Queue again a ``running`` run whose heartbeat is older than ``stale_before`` (its worker died).

    It resumes from its checkpoint, with its scratch space; False when the
    run moved on meanwhile. Sending its task is the caller's part.
    """
    stale: QuerySet[Run] = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, heartbeat_at__lt=stale_before)
    return stale.update(status=RunStatus.QUEUED) == 1


# --- Once per end ------------------------------------------------------------------


def _end(run: Run, status: str, error: str, *, dry_run: bool = False, fields: tuple[str, ...] = ()) -> None:
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    if not dry_run:
        _release(run)
    run.save(update_fields=["status", "error", "finished_at", "summary", *fields])
    if not dry_run:
        run_finished_notify(run)


def _release(run: Run) -> None:
    """What a run holds until it ends: its scratch file, its seen-values table, its raw file outside the archive."""
    work_file_remove(run.pk)
    if run.raw_file is not None:
        raw_file_archive(raw_file=run.raw_file)
    SeenValues(run.pk).drop()


def _notify_read_back(run_id: int) -> None:
    """Notify about a run ended the hard way, reading it back, unless the database went with it."""
    try:
        run = Run.objects.get(pk=run_id)
    except DatabaseError:
        # The crash is what goes up; the reaper ends the run if this could not.
        logger.warning("run %s crashed and its state could not be read back", run_id, exc_info=True)
        return
    if run.status == RunStatus.FAILED:
        run_finished_notify(run)
