"""Re-encrypt every stored source secret under the first key of ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from core.commands import DataflowCommand
from ingestion.crypto import SecretUnreadable
from ingestion.services.sources import sources_secrets_rotate


class Command(DataflowCommand):
    help = (
        "Re-encrypt the sources' secrets with the first key of ENCRYPTION_KEYS. Run it after putting a new "
        "key first; once it has run, the old keys can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = sources_secrets_rotate()
        except SecretUnreadable as exc:
            raise CommandError(f"Nothing changed: {exc}") from None
        if options["json"]:
            self.emit_json({"rotated": count})
        else:
            self.stdout.write(f"Re-encrypted {count} secret(s) with the first key of ENCRYPTION_KEYS.")
