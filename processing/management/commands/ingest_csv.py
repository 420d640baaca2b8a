"""Run the pipeline over a CSV file now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.commands import DataflowCommand, ProgressBar, validation_message
from ingestion.models import Dataset
from ingestion.storage import StorageError, storage_errors
from processing.models import RunTrigger
from processing.services.broker import BrokerUnavailable
from processing.services.previews import file_preview
from processing.services.runs import file_enqueue, file_ingest

from ..reporting import RUN_FAILED_EXIT, RunReportMixin


class Command(RunReportMixin, DataflowCommand):
    help = (
        "Ingest a CSV file into a dataset: validate every row, upsert valid rows by natural key, "
        "keep rejected rows with their reasons. Exit status: 0 when the run succeeded (possibly with "
        "rejected rows), 3 when it failed or was cancelled, 1 for bad input."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("csv_file", help="Path to the CSV file.")
        parser.add_argument("--dataset", required=True, help="Slug of the target dataset.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; write nothing.")
        parser.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="Queue the run for a background worker and print its id (follow it with run_status).",
        )
        parser.add_argument("--force", action="store_true", help="Process even if this exact file loaded before.")
        parser.add_argument("--chunk-size", type=int, help="Rows validated and committed together.")
        parser.add_argument(
            "--encoding",
            help="The file's encoding (e.g. cp1251, shift_jis): needed when it is not UTF-8 and cannot be "
            "detected with confidence; overrides the dataset's declared encoding.",
        )
        parser.add_argument("--delimiter", help="Override the delimiter (e.g. ';').")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["csv_file"])
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file.")
        if options["chunk_size"] is not None and options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        try:
            dataset = Dataset.objects.get(slug=options["dataset"])
        except Dataset.DoesNotExist:
            known = ", ".join(Dataset.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"Unknown dataset {options['dataset']!r} (known: {known}).") from None
        common = {
            "dataset": dataset,
            "original_name": path.name,
            "encoding": options["encoding"],
            "delimiter": options["delimiter"],
            "force": options["force"],
            "chunk_size": options["chunk_size"],
        }
        try:
            with storage_errors(), path.open("rb") as fh:
                if options["dry_run"]:
                    preview = file_preview(source=fh, **common)
                    self.report_preview(preview, options["json"])
                    if preview.status == "failed":
                        raise SystemExit(RUN_FAILED_EXIT)
                    return
                if options["run_async"]:
                    run = file_enqueue(source=fh, trigger=RunTrigger.COMMAND, **common)
                    if options["json"]:
                        self.report_run(run, True)  # the run summary, as run_status --json
                    else:
                        self.stdout.write(
                            f"Queued run {run.pk}. Follow it with: python manage.py run_status {run.pk} --wait"
                        )
                    return
                bar = ProgressBar(path.stat().st_size, enabled=None if not options["json"] else False)
                run = file_ingest(
                    source=fh,
                    trigger=RunTrigger.COMMAND,
                    on_chunk=lambda r: bar.update(r.bytes_read, r.rows_read),
                    **common,
                )
                bar.close()
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from None
        except BrokerUnavailable as exc:
            raise CommandError(str(exc)) from None
        except StorageError as exc:  # the data folder is full or read-only: the file was not kept
            raise CommandError(str(exc)) from None
        self.report_run(run, options["json"])
        if run.status in ("failed", "cancelled"):
            # Scripts and cron jobs must see a failed load as a failure.
            raise SystemExit(RUN_FAILED_EXIT)
