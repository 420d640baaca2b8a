"""Handing runs to the job queue (django-q2) and what happens when it refuses."""

from __future__ import annotations

import contextlib
import logging

from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from ..models import Run, RunStatus

logger = logging.getLogger(__name__)


# The Run row is the outbox of its task: ``enqueued_at`` says when the task was
# last handed to the broker. When the broker is down the run stays queued with
# no ``enqueued_at``, and the reaper sends it once the broker answers again; a
# task that was handed over but never started (lost, or discarded by a worker
# whose SECRET_KEY differs) is sent again after RUN_REQUEUE_AFTER seconds.
# Sending twice is harmless: a worker claims the run with a conditional update,
# so a second delivery finds it taken or ended and does nothing.


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
