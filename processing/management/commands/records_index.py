"""Create (and drop) the record filter indexes of fields marked ``indexed`` (PostgreSQL)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ingestion.models import Dataset
from processing.record_indexes import record_indexes_sync


class Command(BaseCommand):
    help = (
        "Bring the record filter indexes in line with the fields each dataset's schema marks indexed "
        "(applying a schema and runs do this too; use it to repair indexes dropped by hand)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dataset", help="Only this dataset (slug); default: every dataset.")

    def handle(self, *args: Any, **options: Any) -> None:
        datasets = Dataset.objects.select_related("current_schema").order_by("slug")
        if options["dataset"]:
            datasets = datasets.filter(slug=options["dataset"])
            if not datasets.exists():
                raise CommandError(f"No dataset {options['dataset']!r}.")
        for dataset in datasets:
            changes = record_indexes_sync(dataset)
            self.stdout.write(
                f"{dataset.slug}: {len(changes.created)} index(es) created, {len(changes.dropped)} dropped"
            )
