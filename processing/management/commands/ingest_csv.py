"""Run the pipeline over a CSV file now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from ingestion.management.base import DataflowCommand, ProgressBar, validation_message
from ingestion.models import Dataset
from processing.models import Run, RunTrigger
from processing.selectors import run_summary
from processing.services import file_enqueue, file_ingest, file_preview

RUN_FAILED_EXIT = 3  # 1 is bad input (CommandError); 3 means the run itself failed


class Command(DataflowCommand):
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
        parser.add_argument("--encoding", help="Override the detected encoding (e.g. cp1252).")
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
            with path.open("rb") as fh:
                if options["dry_run"]:
                    preview = file_preview(source=fh, **common)
                    self._report_preview(preview, options["json"])
                    if preview.status == "failed":
                        raise SystemExit(RUN_FAILED_EXIT)
                    return
                if options["run_async"]:
                    run = file_enqueue(source=fh, trigger=RunTrigger.COMMAND, **common)
                    if options["json"]:
                        self.emit_json({"run_id": run.pk, "status": run.status})
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
        self._report_run(run, options["json"])
        if run.status in ("failed", "cancelled"):
            # Scripts and cron jobs must see a failed load as a failure.
            raise SystemExit(RUN_FAILED_EXIT)

    def _report_run(self, run: Run, as_json: bool) -> None:
        summary = run_summary(run)
        if as_json:
            self.emit_json(summary)
            return
        style = (
            self.style.SUCCESS
            if run.status == "succeeded"
            else (self.style.WARNING if run.status == "partially_succeeded" else self.style.ERROR)
        )
        self.stdout.write(style(f"Run {run.pk}: {run.status}"))
        if run.error:
            self.stdout.write(self.style.ERROR(f"  {run.error}"))
        if run.noop_of_id:
            self.stdout.write(f"  same file already loaded by run {run.noop_of_id}; nothing to do (use --force)")
        self.stdout.write(
            f"  rows read {run.rows_read:,} · valid {run.rows_valid:,} · rejected {run.rows_rejected:,}\n"
            f"  inserted {run.rows_inserted:,} · updated {run.rows_updated:,} · unchanged {run.rows_unchanged:,}"
        )
        if run.summary.get("unknown_columns"):
            self.stdout.write(f"  ignored unknown columns: {', '.join(run.summary['unknown_columns'])}")
        if summary["duration_seconds"] is not None:
            self.stdout.write(f"  took {summary['duration_seconds']:.2f}s")
        for r in summary["first_errors"]:
            self.stdout.write(f"  line {r['line']}: {_errors_text(r['errors'])}")
        if run.rows_rejected:
            self.stdout.write(f"  all rejected rows: python manage.py export_rejected --run {run.pk}")

    def _report_preview(self, preview: Any, as_json: bool) -> None:
        payload = {
            "dry_run": True,
            "status": preview.status,
            "error": preview.error,
            "encoding": preview.encoding,
            "delimiter": preview.delimiter,
            "rows_read": preview.rows_read,
            "valid": preview.valid,
            "rejected": preview.rejected,
            "inserted": preview.inserted,
            "updated": preview.updated,
            "unchanged": preview.unchanged,
            "unknown_columns": preview.summary.get("unknown_columns", []),
            "noop_of": preview.noop_of,
            "first_errors": [{"line": r["line"], "errors": r["errors"]} for r in preview.rejected_rows],
        }
        if as_json:
            self.emit_json(payload)
            return
        self.stdout.write(f"Dry run (nothing written): would end {preview.status}")
        if preview.error:
            self.stdout.write(self.style.ERROR(f"  {preview.error}"))
        self.stdout.write(
            f"  encoding {preview.encoding} · delimiter {preview.delimiter!r}\n"
            f"  rows read {preview.rows_read:,} · valid {preview.valid:,} · rejected {preview.rejected:,}\n"
            f"  new {preview.inserted:,} · updated {preview.updated:,} · unchanged {preview.unchanged:,}"
        )
        for r in payload["first_errors"]:
            self.stdout.write(f"  line {r['line']}: {_errors_text(r['errors'])}")


def _errors_text(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{field}: {', '.join(messages)}" for field, messages in errors.items())
