"""Print a proposed schema file for a CSV file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ingestion.inference import schema_infer, slug_from_filename
from ingestion.management.base import validation_message
from ingestion.schema import schema_parse


class Command(BaseCommand):
    help = (
        "Read a sample of a CSV file and print a proposed schema file (types, required, choices for "
        "low-cardinality columns, a key). Review it, then apply it with dataset_apply."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("csv_file")
        parser.add_argument("--slug", help="Dataset slug (default: from the file name).")
        parser.add_argument("--sample-rows", type=int, default=10_000, help="Rows to sample (default 10000).")
        parser.add_argument("--output", help="Write the schema here instead of standard output.")
        parser.add_argument("--json", action="store_true", help="Accepted for symmetry; the output is JSON anyway.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["csv_file"])
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file.")
        if options["sample_rows"] < 1:
            raise CommandError("--sample-rows must be at least 1.")
        slug = options["slug"] or slug_from_filename(path.name)
        try:
            with path.open("rb") as fh:
                schema = schema_infer(fh, slug=slug, sample_rows=options["sample_rows"])
            schema_parse(schema)  # what we propose must be applicable as is
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from None
        text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")
