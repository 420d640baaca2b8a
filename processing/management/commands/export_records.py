"""Stream a dataset's records to a file or stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.commands import write_chunks
from ingestion.models import Dataset
from processing.exports import EXPORT_FORMATS, records_export, records_export_parquet


class Command(BaseCommand):
    help = (
        "Export a dataset's records as CSV or JSON, streamed. CSV text cells starting with = + - @, tab or CR "
        "are prefixed with ' so spreadsheets do not run them as formulas."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dataset", required=True, help="Slug of the dataset.")
        parser.add_argument("--format", choices=[*EXPORT_FORMATS, "parquet"], default="csv")
        parser.add_argument("--output", help="File to write (default: standard output; required for parquet).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            dataset = Dataset.objects.select_related("current_schema").get(slug=options["dataset"])
        except Dataset.DoesNotExist:
            raise CommandError(f"Unknown dataset {options['dataset']!r}.") from None
        if dataset.current_schema is None:
            raise CommandError(f"Dataset {dataset.slug!r} has no schema yet.")
        if options["format"] == "parquet":
            if not options["output"]:
                raise CommandError("Parquet is binary: give a file with --output.")
            try:
                with Path(options["output"]).open("wb") as fh:
                    fh.writelines(records_export_parquet(dataset))
            except OSError as exc:
                raise CommandError(f"Cannot write {options['output']}: {exc.strerror}") from None
            self.stderr.write(f"Wrote {options['output']}")
            return
        write_chunks(self, records_export(dataset, options["format"]), options["output"])
