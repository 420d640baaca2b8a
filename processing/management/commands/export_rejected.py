"""Export a run's rejected rows: line numbers, errors and raw values."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.commands import write_chunks
from processing.exports import DEFAULT_FORMAT, rejected_export, rejected_formats
from processing.models import Run


class Command(BaseCommand):
    help = (
        "Export the rows a run rejected, with their line numbers, errors and raw values. The CSV keeps the "
        "file's columns, so it can be fixed and uploaded again (_line and _errors are ignored on upload)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--run", required=True, type=int, help="Run id.")
        parser.add_argument("--format", choices=rejected_formats(), default=DEFAULT_FORMAT)
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = Run.objects.get(pk=options["run"])
        except Run.DoesNotExist:
            raise CommandError(f"There is no run {options['run']}.") from None
        write_chunks(self, rejected_export(run, options["format"]), options["output"])
