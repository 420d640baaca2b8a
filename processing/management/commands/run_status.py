"""Show a run's status and progress, optionally waiting for it to end."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from core.commands import DataflowCommand, ProgressBar
from processing.management.reporting import counters_text
from processing.models import Run, RunStatus
from processing.quality.selectors import run_profile
from processing.selectors import run_summary


class Command(DataflowCommand):
    help = "Show a run's status, counters and progress. --wait follows it until it ends."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run_id", type=int)
        parser.add_argument("--wait", action="store_true", help="Wait until the run has ended.")
        parser.add_argument("--timeout", type=float, default=0, help="With --wait: give up after this many seconds.")
        parser.add_argument("--interval", type=float, default=1.0, help="With --wait: seconds between checks.")
        parser.add_argument("--profile", action="store_true", help="With --json: add the run's profile.")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = Run.objects.select_related("dataset", "raw_file", "source", "started_by").get(pk=options["run_id"])
        except Run.DoesNotExist:
            raise CommandError(f"There is no run {options['run_id']}.") from None
        if options["wait"]:
            bar = ProgressBar(run.bytes_total or 1, enabled=None if not options["json"] else False)
            deadline = time.monotonic() + options["timeout"] if options["timeout"] > 0 else None
            try:
                while not run.is_finished:
                    # The run's own rate: its rows over the time since it started, not since we began watching.
                    if run.started_at is not None:
                        since = max((timezone.now() - run.started_at).total_seconds(), 0.0)
                        bar.started = time.monotonic() - since
                    bar.update(run.bytes_read, run.rows_read, total=run.bytes_total or 1)
                    if deadline is not None and time.monotonic() > deadline:
                        raise CommandError(f"Run {run.pk} is still {run.status} after {options['timeout']:g}s.")
                    time.sleep(options["interval"])
                    run.refresh_from_db()
            finally:
                bar.close()  # erased on every way out, Ctrl-C included
        summary = run_summary(run)
        if options["json"]:
            # The summary has the checks and anomalies; the profile on request (docs/quality.md).
            if options["profile"]:
                summary["profile"] = run_profile(run)["profile"]
            self.emit_json(summary)
            return
        self.stdout.write(f"Run {summary['id']} ({summary['dataset']}, {summary['trigger']}): {summary['status']}")
        if summary["status"] == RunStatus.RUNNING:
            self.stdout.write(
                f"  progress {summary['progress']:.0%}"
                + ("  (cancel requested)" if summary["cancel_requested"] else "")
            )
        if summary["status"] == RunStatus.QUEUED:
            self.stdout.write(
                f"  sent to the job queue {summary['enqueue_count']} time(s), "
                f"last at {run.enqueued_at:%Y-%m-%d %H:%M:%S %Z}"
                if summary["enqueued_at"]
                else "  not in the job queue yet (it was unavailable): the reaper sends it when the queue is back"
            )
        if summary["error"]:
            self.stdout.write(f"  {summary['error']}")
        if summary["noop_of"]:
            self.stdout.write(f"  nothing to do: the same file was already loaded by run {summary['noop_of']}")
        self.stdout.write(counters_text(summary))
        if summary["parent"]:
            self.stdout.write(f"  follows run {summary['parent']}")
