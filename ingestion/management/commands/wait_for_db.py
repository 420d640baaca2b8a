"""Wait until the database accepts connections (used by the container entrypoint)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.utils import OperationalError


class Command(BaseCommand):
    help = "Wait until the default database accepts connections, or fail after --timeout seconds."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=60.0)

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = time.monotonic() + options["timeout"]
        connection = connections["default"]
        while True:
            try:
                connection.ensure_connection()
            except OperationalError as exc:
                if time.monotonic() > deadline:
                    raise CommandError(f"The database is not reachable after {options['timeout']:g}s: {exc}") from None
                time.sleep(1)
                continue
            self.stdout.write("Database is up.")
            return
