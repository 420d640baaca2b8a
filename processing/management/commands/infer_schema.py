"""Propose a schema file for a CSV file, and say why.

It lives in ``processing`` because the types are judged with the pipeline's
own converters (``processing.pipeline.fields.compile_field``); the rules
themselves are ``ingestion.inference.schema_infer``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.commands import DataflowCommand, validation_message
from ingestion.inference import schema_infer, slug_from_filename
from ingestion.schema import schema_parse
from processing.pipeline.fields import compile_field


class Command(DataflowCommand):
    help = (
        "Read a sample of a CSV file and propose a schema file: types (with the few values that do not fit "
        "reported by line), null tokens, required columns, a key that stays unique once values are converted. "
        "The schema goes to standard output (or --output), a short report of what was decided and why to "
        "standard error; --json prints one object with both. Review it, then apply it with dataset_apply."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("csv_file")
        parser.add_argument("--slug", help="Dataset slug (default: from the file name).")
        parser.add_argument("--sample-rows", type=int, default=10_000, help="Rows to sample (default 10000).")
        parser.add_argument("--output", help="Write the schema here instead of standard output.")
        parser.add_argument(
            "--encoding",
            help="The file's encoding (e.g. cp1251), when it is not UTF-8 and cannot be detected with certainty.",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["csv_file"])
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file.")
        if options["sample_rows"] < 1:
            raise CommandError("--sample-rows must be at least 1.")
        slug = options["slug"] or slug_from_filename(path.name)
        try:
            with path.open("rb") as fh:
                inference = schema_infer(
                    source=fh,
                    slug=slug,
                    converter_for=compile_field,
                    sample_rows=options["sample_rows"],
                    encoding=options["encoding"],
                )
            schema_parse(inference.schema)  # what we propose must be applicable as is
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from None
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        text = json.dumps(inference.schema, indent=2, ensure_ascii=False) + "\n"
        if options["output"]:
            try:
                Path(options["output"]).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot write {options['output']}: {exc.strerror}") from None
        if options["json"]:
            self.emit_json({"schema": inference.schema, "report": inference.report()})
            return
        for line in inference.summary():
            self.stderr.write(line)
        if options["output"]:
            self.stderr.write(f"Wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")
