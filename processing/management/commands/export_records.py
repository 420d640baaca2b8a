"""Stream a dataset's records to a file or stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.commands import write_chunks
from ingestion.models import Dataset
from processing.exports import DEFAULT_FORMAT, EXPORT_FORMATS, export_format, formats_text


class Command(BaseCommand):
    help = (
        f"Export a dataset's records as {formats_text([f.label for f in EXPORT_FORMATS.values()])}, streamed. "
        "CSV text cells starting with = + - @, tab or CR are prefixed with ' so spreadsheets do not run them "
        "as formulas."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dataset", required=True, help="Slug of the dataset.")
        parser.add_argument("--format", choices=list(EXPORT_FORMATS), default=DEFAULT_FORMAT)
        parser.add_argument("--output", help="File to write (default: standard output; required for binary formats).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            dataset = Dataset.objects.select_related("current_schema").get(slug=options["dataset"])
        except Dataset.DoesNotExist:
            raise CommandError(f"Unknown dataset {options['dataset']!r}.") from None
        if dataset.current_schema is None:
            raise CommandError(f"Dataset {dataset.slug!r} has no schema yet.")
        fmt = export_format(options["format"])
        if not fmt.binary:
            write_chunks(self, fmt.records(dataset), options["output"])
            return
        if not options["output"]:
            raise CommandError(f"{fmt.label} is binary: give a file with --output.")
        try:
            with Path(options["output"]).open("wb") as fh:
                fh.writelines(fmt.records(dataset))
        except OSError as exc:
            raise CommandError(f"Cannot write {options['output']}: {exc.strerror}") from None
        self.stderr.write(f"Wrote {options['output']}")
