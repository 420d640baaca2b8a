"""Pull an HTTP source now (or preview a pull) and report the run."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.commands import DataflowCommand, validation_message
from ingestion.http.guard import FetchError
from ingestion.models import Source
from processing.models import RunTrigger
from processing.services.broker import BrokerUnavailable
from processing.services.previews import source_preview
from processing.services.runs import source_pull_now
from processing.services.sources import source_pull

from ..reporting import RUN_FAILED_EXIT, RunReportMixin


class Command(RunReportMixin, DataflowCommand):
    help = (
        "Pull an HTTP source: fetch every page of its API, then validate and load the records like a file. "
        "Exit status: 0 when the run succeeded (possibly with rejected rows), 3 when the pull or the run "
        "failed, 1 for bad input."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", help="The source's name.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Fetch and report what loading would do; keep nothing."
        )
        parser.add_argument(
            "--async", dest="run_async", action="store_true", help="Queue the pull for a worker and print the run id."
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        source = Source.objects.select_related("dataset").filter(name=options["name"]).first()
        if source is None:
            known = ", ".join(Source.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"Unknown source {options['name']!r} (known: {known}).")
        try:
            if options["dry_run"]:
                try:
                    result = source_preview(source=source)
                except FetchError as exc:
                    if options["json"]:
                        self.emit_json({"dry_run": True, "status": "failed", "error": f"pulling failed: {exc}"})
                    else:
                        self.stderr.write(self.style.ERROR(f"Pulling {source.name} failed: {exc}"))
                    raise SystemExit(RUN_FAILED_EXIT) from None
                self._report_pull(result.pull, options["json"])
                self.report_preview(result.preview, options["json"], extra={"pull": result.pull})
                if result.preview.status == "failed":
                    raise SystemExit(RUN_FAILED_EXIT)
                return
            if options["run_async"]:
                run = source_pull(source=source, trigger=RunTrigger.COMMAND)
                if options["json"]:
                    self.report_run(run, True)  # the run summary, as run_status --json
                else:
                    follow = f"python manage.py run_status {run.pk} --wait"
                    self.stdout.write(f"Queued run {run.pk}. Follow it with: {follow}")
                return
            run = source_pull_now(source=source, trigger=RunTrigger.COMMAND)
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from None
        except BrokerUnavailable as exc:
            raise CommandError(str(exc)) from None
        if not options["json"] and run.summary.get("pull"):
            self._report_pull(run.summary["pull"], False)
        self.report_run(run, options["json"])
        if run.status in ("failed", "cancelled"):
            raise SystemExit(RUN_FAILED_EXIT)

    def _report_pull(self, pull: dict[str, Any], as_json: bool) -> None:
        if as_json:
            return
        line = f"Fetched {pull['records']:,} records in {pull['pages']} page(s), {pull['bytes']:,} bytes"
        if pull.get("watermark"):
            line += f"; watermark {pull['watermark']}"
        self.stdout.write(line)
        if pull.get("stopped"):
            self.stdout.write(self.style.WARNING(f"  stopped early: {pull['stopped']}"))
