"""Create or update a dataset from a schema file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from ingestion.management.base import DataflowCommand, validation_message
from ingestion.schema import MAX_SCHEMA_SIZE, schema_loads
from ingestion.services import dataset_apply


class Command(DataflowCommand):
    help = "Create or update a dataset from a schema file (JSON). Changing its fields creates a new schema version."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("schema_file", help="Path to the schema file, or - for standard input.")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["schema_file"]
        try:
            # One byte past the limit is enough to refuse a file, so a huge one is never read whole.
            if path == "-":
                data = sys.stdin.buffer.read(MAX_SCHEMA_SIZE + 1)
            else:
                with Path(path).open("rb") as fh:
                    data = fh.read(MAX_SCHEMA_SIZE + 1)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
        if len(data) > MAX_SCHEMA_SIZE:
            raise CommandError(f"Invalid schema in {path}: the file is larger than {MAX_SCHEMA_SIZE} bytes.")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8 text.") from None
        try:
            spec = schema_loads(text)
            result = dataset_apply(spec=spec)
        except ValidationError as exc:
            raise CommandError(f"Invalid schema in {path}: {validation_message(exc)}") from None
        payload = {
            "dataset": result.dataset.slug,
            "created": result.created,
            "schema_version": result.schema.number,
            "new_schema_version": result.new_version,
            "fields": [f.name for f in spec.fields],
            "key": list(spec.key),
        }
        if options["json"]:
            self.emit_json(payload)
            return
        verb = "Created" if result.created else "Updated"
        version = f"schema v{result.schema.number}" + (" (new)" if result.new_version else " (unchanged)")
        self.stdout.write(self.style.SUCCESS(f"{verb} dataset {result.dataset.slug!r}: {version}"))
        self.stdout.write(f"  key: {', '.join(spec.key)}")
        self.stdout.write(f"  fields ({len(spec.fields)}): {', '.join(f.name for f in spec.fields)}")
