"""Load the demo dataset and make sure an admin account exists (used by `make run`)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from ingestion.schema import schema_loads
from ingestion.services.datasets import dataset_apply
from processing.models import RunTrigger
from processing.services.runs import file_ingest

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"


class Command(BaseCommand):
    help = (
        "Create the demo 'sales' dataset, ingest the demo CSV (a no-op when already loaded) and create the "
        "admin account named by DEMO_ADMIN_USERNAME / DEMO_ADMIN_PASSWORD if it does not exist."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-admin", action="store_true", help="Do not create the admin account.")

    def handle(self, *args: Any, **options: Any) -> None:
        spec = schema_loads((DEMO_DIR / "sales.schema.json").read_text(encoding="utf-8"))
        dataset = dataset_apply(spec=spec).dataset
        csv_path = DEMO_DIR / "sales.csv"
        with csv_path.open("rb") as fh:
            run = file_ingest(dataset=dataset, source=fh, original_name=csv_path.name, trigger=RunTrigger.COMMAND)
        if run.noop_of_id:
            self.stdout.write(f"Demo dataset 'sales' already loaded (run {run.noop_of_id}).")
        else:
            self.stdout.write(
                f"Demo dataset 'sales' loaded by run {run.pk}: {run.rows_valid} valid rows, "
                f"{run.rows_rejected} rejected (see them in the admin)."
            )
        if not options["no_admin"]:
            self._ensure_admin()

    def _ensure_admin(self) -> None:
        User = get_user_model()
        username = settings.DEMO_ADMIN_USERNAME
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Admin account {username!r} exists (password in .env as DEMO_ADMIN_PASSWORD).")
            return
        password = settings.DEMO_ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=settings.DEMO_ADMIN_EMAIL, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created admin account {username!r} with password {password!r}."))
