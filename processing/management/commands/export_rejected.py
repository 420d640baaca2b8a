"""Export rejected rows still in quarantine (a run's or a dataset's): line numbers, errors and raw values."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.commands import write_chunks
from ingestion.models import Dataset
from processing.exports import DEFAULT_FORMAT, rejected_export, rejected_export_of_dataset, rejected_formats
from processing.models import Run


class Command(BaseCommand):
    help = (
        "Export the rows a run (or a dataset) rejected that are still in quarantine, with their line numbers, "
        "errors and raw values. The CSV keeps the file's columns, so it can be fixed and uploaded again "
        "(_run, _line and _errors are ignored on upload). Discarded rows and rows loaded since are left out."
    )

    def add_arguments(self, parser: Any) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--run", type=int, help="Run id: that run's rows.")
        which.add_argument("--dataset", help="Dataset slug: the rows of all its runs still in quarantine.")
        parser.add_argument("--format", choices=rejected_formats(), default=DEFAULT_FORMAT)
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dataset"]:
            try:
                dataset = Dataset.objects.get(slug=options["dataset"])
            except Dataset.DoesNotExist:
                raise CommandError(f"There is no dataset {options['dataset']!r}.") from None
            write_chunks(self, rejected_export_of_dataset(dataset, options["format"]), options["output"])
            return
        try:
            run = Run.objects.get(pk=options["run"])
        except Run.DoesNotExist:
            raise CommandError(f"There is no run {options['run']}.") from None
        write_chunks(self, rejected_export(run, options["format"]), options["output"])
