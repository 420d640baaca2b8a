"""Pulling HTTP sources: a run that fetches the API's records, then processes them.

Every door (admin "Pull now", ``POST /api/v1/sources/{id}/pull/``,
``manage.py pull_source`` and the source's schedule) calls these.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from django import db
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ingestion.audit import audit_record
from ingestion.crypto import SecretUnreadable
from ingestion.http.guard import FetchError
from ingestion.http.pull import PullResult, records_pull
from ingestion.models import AuditAction, RawFile, Source
from ingestion.services.datasets import dataset_schema_require
from ingestion.services.raw_files import raw_file_receive
from ingestion.services.sources import source_pull_spec

from .. import lifecycle
from ..models import FINISHED_STATUSES, Run, RunStatus, RunTrigger
from .broker import task_enqueue

logger = logging.getLogger(__name__)

# How often a long fetch proves its worker is alive (and looks for a cancel).
_BEAT_SECONDS = 15.0


class _FetchCancelled(Exception):
    pass


class _Heartbeat(threading.Thread):
    """Keeps a run's heartbeat fresh while its pull waits (slow pages, retries, Retry-After).

    Without it a long wait between two pages would look like a dead worker
    to the reaper, which would hand the run to a second worker.
    """

    def __init__(self, run_id: int) -> None:
        super().__init__(name=f"heartbeat-run-{run_id}", daemon=True)
        self.run_id = run_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(_BEAT_SECONDS):
                Run.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
        finally:
            db.connection.close()  # this thread's own connection

    def __enter__(self) -> _Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.join()


class _CancellableFile:
    """Writes through to a file; every few seconds checks whether the run was cancelled.

    (The run's heartbeat is kept fresh by ``_Heartbeat``, waits included.)
    """

    def __init__(self, fh: IO[bytes], run_id: int) -> None:
        self.fh = fh
        self.run_id = run_id
        self.last = time.monotonic()

    def write(self, data: bytes) -> int:
        now = time.monotonic()
        if now - self.last > _BEAT_SECONDS:
            self.last = now
            if Run.objects.filter(pk=self.run_id, cancel_requested=True).exists():
                raise _FetchCancelled
        return self.fh.write(data)


@dataclass
class Fetched:
    raw_file: RawFile
    result: PullResult


def _work_file() -> IO[bytes]:
    work_dir = settings.DATAFLOW["WORK_DIR"]
    os.makedirs(work_dir, exist_ok=True)
    return tempfile.TemporaryFile(dir=work_dir)


def source_fetch(*, source: Source, run_id: int | None = None, user: Any = None) -> Fetched:
    """Fetch a source's records into a new raw NDJSON file (``FetchError`` when the pull fails)."""
    try:
        spec = source_pull_spec(source)
    except (SecretUnreadable, ValueError) as exc:
        raise FetchError(str(exc)) from None
    started = timezone.now()
    with _work_file() as fh:
        try:
            if run_id is None:
                result = records_pull(spec, fh)
            else:
                with _Heartbeat(run_id):
                    result = records_pull(spec, _CancellableFile(fh, run_id))
        except UnicodeError:
            # http.client sends header values as Latin-1; source_clean refuses others on save.
            raise FetchError("a header value or credential cannot be sent in an HTTP header (Latin-1 only)") from None
        fh.seek(0)
        raw_file = raw_file_receive(
            dataset=source.dataset,
            source=fh,
            original_name=f"{source.name}-{started:%Y%m%dT%H%M%SZ}.ndjson",
            user=user,
            format=RawFile.Format.NDJSON,
            # Each response is capped while it streams, and pages by max_pages.
            max_size=sys.maxsize,
        )
    return Fetched(raw_file=raw_file, result=result)


def pull_summary(result: PullResult) -> dict[str, Any]:
    return {
        "records": result.records,
        "pages": result.pages,
        "bytes": result.bytes_received,
        "watermark": result.watermark,
        "stopped": result.stopped,
    }


def run_fetch(run: Run) -> bool:
    """The fetch step of a source's run: give it its file, or end it ``failed`` with the reason.

    Nothing is stored when the pull fails: the records of a pull are loaded
    only once every page has arrived, so a retry starts over cleanly.
    """
    source = run.source
    if source is None:
        _run_fail(run, "the source of this run was deleted before it was pulled")
        return False
    try:
        fetched = source_fetch(source=source, run_id=run.pk, user=run.started_by)
    except _FetchCancelled:
        lifecycle.run_finish(run, RunStatus.CANCELLED, error="cancelled on request")
        return False
    except FetchError as exc:
        _run_fail(run, f"pulling {source.name} failed: {exc}")
        return False
    run.raw_file = fetched.raw_file
    run.bytes_total = fetched.raw_file.size
    run.summary["pull"] = pull_summary(fetched.result)
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["raw_file", "bytes_total", "summary", "heartbeat_at"])
    return True


def _run_fail(run: Run, message: str) -> None:
    logger.warning("run %s: %s", run.pk, message)
    lifecycle.run_fail(run, message[:5000])


class SourceBusy(ValidationError):
    """A pull of the source has not finished yet; a second one would race it."""


@transaction.atomic
def _pull_run_create(*, source: Source, user: Any, trigger: str, parent: Run | None = None) -> Run:
    dataset = source.dataset
    dataset_schema_require(dataset)
    # One pull of a source at a time: two would each fetch from the same watermark and
    # the older payload could commit last. The row lock serialises this check.
    Source.objects.select_for_update().filter(pk=source.pk).first()
    busy = Run.objects.filter(source=source).exclude(status__in=FINISHED_STATUSES).first()
    if busy is not None:
        raise SourceBusy(
            f"Source {source.name!r} is already being pulled by run {busy.pk} ({busy.status}); "
            "wait for it to finish or cancel it."
        )
    run = Run.objects.create(
        dataset=dataset,
        source=source,
        schema_id=dataset.current_schema_id,
        trigger=trigger,
        started_by=user if getattr(user, "pk", None) else None,
        chunk_size=settings.DATAFLOW["CHUNK_SIZE"],
        parent=parent,
    )
    audit_record(
        action=AuditAction.SOURCE_PULLED,
        actor=user,
        dataset=dataset,
        obj=run,
        details={"source": source.name, "trigger": trigger},
    )
    return run


def source_pull(*, source: Source, user: Any = None, trigger: str = RunTrigger.API, parent: Run | None = None) -> Run:
    """Queue a pull of ``source``: a run that a worker fetches and processes."""
    with transaction.atomic():
        run = _pull_run_create(source=source, user=user, trigger=trigger, parent=parent)
        transaction.on_commit(partial(task_enqueue, run.pk))
    return run
