"""Create or update a dataset from a schema file."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.commands import DataflowCommand, validation_message
from ingestion.record_store import StoredRecordsReport
from ingestion.schema import MAX_SCHEMA_SIZE, SchemaSpec, schema_loads
from ingestion.services.datasets import dataset_apply, dataset_apply_preview


class Command(DataflowCommand):
    help = (
        "Create or update a dataset from a schema file (JSON). Changing its fields creates a new schema version; "
        "stored records that no longer pass it are quarantined (see --dry-run)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("schema_file", help="Path to the schema file, or - for standard input.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the stored records against the schema and report what applying it would do; change nothing.",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["schema_file"]
        data = self.read_bounded(path, MAX_SCHEMA_SIZE, "schema")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not UTF-8 text.") from None
        try:
            spec = schema_loads(text)
            if options["dry_run"]:
                self._preview(spec, dataset_apply_preview(spec=spec), as_json=options["json"])
                return
            result = dataset_apply(spec=spec)
        except ValidationError as exc:
            raise CommandError(f"Invalid schema in {path}: {validation_message(exc)}") from None
        records = result.records or StoredRecordsReport()
        payload = {
            "dataset": result.dataset.slug,
            "created": result.created,
            "schema_version": result.schema.number,
            "new_schema_version": result.new_version,
            "fields": [f.name for f in spec.fields],
            "key": list(spec.key),
            "records_checked": records.records_checked,
            "records_quarantined": records.records_quarantined,
            "run_id": records.run_id,
            "columns_added": records.columns_added,
            "columns_dropped": records.columns_dropped,
            "columns_converted": records.columns_converted,
        }
        if options["json"]:
            self.emit_json(payload)
            return
        verb = "Created" if result.created else "Updated"
        version = f"schema v{result.schema.number}" + (" (new)" if result.new_version else " (unchanged)")
        self.stdout.write(self.style.SUCCESS(f"{verb} dataset {result.dataset.slug!r}: {version}"))
        self.stdout.write(f"  key: {', '.join(spec.key)}")
        self.stdout.write(f"  fields ({len(spec.fields)}): {', '.join(f.name for f in spec.fields)}")
        if records.records_checked:
            self.stdout.write(f"  stored records checked: {records.records_checked}")
        if records.records_quarantined:
            self.stdout.write(
                self.style.WARNING(
                    f"  {records.records_quarantined} record(s) no longer pass and were quarantined as rejected rows "
                    f"of run {records.run_id} (fix them there)"
                )
            )

    def _preview(self, spec: SchemaSpec, report: StoredRecordsReport, *, as_json: bool) -> None:
        payload: dict[str, Any] = {
            "dataset": spec.slug,
            "dry_run": True,
            "records_checked": report.records_checked,
            "records_failing": report.records_failing,
            "failures": report.failures,
            "columns_added": report.columns_added,
            "columns_dropped": report.columns_dropped,
            "columns_converted": report.columns_converted,
        }
        if as_json:
            self.emit_json(payload)
            return
        self.stdout.write(f"Dry run for dataset {spec.slug!r}: nothing was changed.")
        self.stdout.write(f"  stored records checked: {report.records_checked}, failing: {report.records_failing}")
        for name in ("columns_added", "columns_dropped", "columns_converted"):
            if payload[name]:
                self.stdout.write(f"  {name.replace('_', ' ')}: {', '.join(payload[name])}")
        for failure in report.failures:
            reasons = "; ".join(f"{f}: {', '.join(m)}" for f, m in failure["errors"].items())
            self.stdout.write(f"  {failure['key']} (line {failure['source_line']}): {reasons}")
