"""Telling people about finished runs: webhooks (JSON POST) and email.

A run notifies when it fails, when a ``warn`` data-quality check of its
schema failed (``run.checks``, one message for all of them), and, when
configured, when it succeeds or rejects more than a share of its rows. Targets are settings-wide
(``NOTIFY_WEBHOOKS``, ``NOTIFY_EMAILS``) plus the dataset's own. Sending
happens in a background task after the run is committed; a failing
webhook or mail server is logged and never changes the run.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django_q.tasks import async_task

from ingestion.http.client import HttpClient
from ingestion.http.guard import FetchError

from .models import LOADED_STATUSES, Run, RunStatus
from .quality.selectors import run_checks
from .selectors import run_summary

logger = logging.getLogger(__name__)


def run_notify_event(run: Run) -> str | None:
    """Which event a finished run notifies about: "run.failed", "run.checks", "run.rejects", "run.succeeded" or None."""
    if run.status == RunStatus.FAILED:
        return "run.failed"
    if run.status not in LOADED_STATUSES:
        return None
    if any(c["status"] == "failed" for c in run_checks(run)):
        return "run.checks"
    dataset = run.dataset
    threshold = dataset.notify_reject_rate
    if threshold is not None and run.rows_read and run.rows_rejected / run.rows_read > threshold:
        return "run.rejects"
    if dataset.notify_on_success or settings.NOTIFY_ON_SUCCESS:
        return "run.succeeded"
    return None


def _targets(run: Run) -> tuple[list[str], list[str]]:
    dataset = run.dataset
    webhooks = list(dict.fromkeys([*settings.NOTIFY_WEBHOOKS, *(dataset.notify_webhooks or [])]))
    emails = list(dict.fromkeys([*settings.NOTIFY_EMAILS, *(dataset.notify_emails or [])]))
    return webhooks, emails


def run_finished_notify(run: Run) -> None:
    """Queue the notification of a finished run, if it has one and somebody to tell.

    Called once per run end, by ``processing.lifecycle``.
    """
    event = run_notify_event(run)
    if event is None or not any(_targets(run)):
        return
    transaction.on_commit(partial(_notify_enqueue, run.pk, event))


def _notify_enqueue(run_id: int, event: str) -> None:
    try:
        async_task("processing.tasks.notify_task", run_id, event, task_name=f"notify-run-{run_id}")
    except Exception:  # whatever the broker raises
        # The run has ended as it did whatever happens here: with the job queue
        # down the notification is lost and logged, and the caller not failed over it.
        logger.warning("run %s: its %s notification could not be queued", run_id, event, exc_info=True)


def run_notification_payload(run: Run, event: str) -> dict[str, Any]:
    """The webhook's JSON document: the event and the run's summary, as the API and ``run_status --json`` show it."""
    return {"event": event, "run": run_summary(run)}


def _email_lines(summary: dict[str, Any]) -> list[str]:
    """The run summary for people: one ``key: value`` line per plain value that is set."""
    lines = [f"{k}: {v}" for k, v in summary.items() if v not in (None, "") and not isinstance(v, dict | list)]
    if summary["file"]:
        lines.append(f"file: {summary['file']['name']}")
    lines += [f"line {e['line']}: {e['errors']}" for e in summary["first_errors"]]
    return lines


_SUBJECTS = {
    "run.failed": "DataFlow: run {id} of {dataset} failed",
    "run.checks": "DataFlow: run {id} of {dataset} failed data-quality checks",
    "run.rejects": "DataFlow: run {id} of {dataset} rejected {rejected} of {read} rows",
    "run.succeeded": "DataFlow: run {id} of {dataset} {status}",
}


def run_notify(*, run_id: int, event: str) -> dict[str, int]:
    """Send a run's notification to every target now; returns how many deliveries worked and failed."""
    run = Run.objects.select_related("dataset", "source", "raw_file", "started_by").get(pk=run_id)
    webhooks, emails = _targets(run)
    payload = run_notification_payload(run, event)
    sent = failed = 0
    client = HttpClient()
    for url in webhooks:
        try:
            status = client.post_json(url, payload, timeout=settings.NOTIFY_TIMEOUT)
        except FetchError as exc:
            logger.warning("webhook for run %s failed: %s", run.pk, exc)
            failed += 1
            continue
        if 200 <= status < 300:
            sent += 1
        else:
            logger.warning("webhook for run %s answered %s", run.pk, status)
            failed += 1
    if emails:
        info = payload["run"]
        subject = _SUBJECTS[event].format(
            id=run.pk, dataset=info["dataset"], status=run.status, rejected=run.rows_rejected, read=run.rows_read
        )
        lines = _email_lines(info)
        lines += [
            f"{c['severity']} check {c['kind']} failed: {c['message']}"
            for c in payload["run"]["checks"]
            if c["status"] == "failed"
        ]
        try:
            send_mail(subject, "\n".join(lines) + "\n", None, emails)
            sent += len(emails)
        except Exception as exc:  # any mail failure is logged, never raised into the run
            logger.warning("notification email for run %s failed: %s", run.pk, exc)
            failed += len(emails)
    return {"sent": sent, "failed": failed}
