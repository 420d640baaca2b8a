"""Take back the read-only access that sql_access_grant gave a PostgreSQL role."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.commands import DataflowCommand, validation_message
from processing.sql_access import sql_access_revoke

from .sql_access_grant import report


class Command(DataflowCommand):
    help = (
        "Revoke ROLE's read access to the dataset tables (present and future). The role is kept; "
        "DROP ROLE it afterwards if nothing else uses it. PostgreSQL only; see docs/sql.md."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("role")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            access = sql_access_revoke(role=options["role"])
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from None
        report(self, access, as_json=options["json"], done="may no longer read")
