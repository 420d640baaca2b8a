"""Print a new Fernet key for ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ingestion.crypto import key_generate


class Command(BaseCommand):
    help = "Print a new encryption key for ENCRYPTION_KEYS (put it first in the list to start using it)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(key_generate())
