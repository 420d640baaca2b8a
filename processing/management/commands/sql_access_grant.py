"""Let a PostgreSQL role read the per-dataset tables (read-only SQL access for analysts)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.commands import DataflowCommand, validation_message
from processing.sql_access import SqlAccess, sql_access_grant


class Command(DataflowCommand):
    help = (
        "Grant ROLE read-only access (SELECT) to every dataset table in the datasets schema, including "
        "tables created later, and nothing else. PostgreSQL only; see docs/sql.md."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("role", help="An existing role (lowercase), e.g. a login made with CREATE ROLE … LOGIN.")
        parser.add_argument(
            "--create",
            action="store_true",
            help="Create ROLE if missing, as a NOLOGIN group role; then GRANT it to login roles.",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            access = sql_access_grant(role=options["role"], create=options["create"])
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from None
        report(self, access, as_json=options["json"], done="may now read")


def report(command: DataflowCommand, access: SqlAccess, *, as_json: bool, done: str) -> None:
    """The summary both SQL access commands print."""
    if as_json:
        command.emit_json(access.as_dict())
        return
    if access.role_created:
        command.stdout.write(f"Created group role {access.role} (NOLOGIN).")
    command.stdout.write(
        command.style.SUCCESS(f"{access.role} {done} the tables of schema {access.schema} in {access.database}.")
    )
    for statement in access.statements:
        command.stdout.write(f"  {statement}")
    for warning in access.warnings:
        command.stdout.write(command.style.WARNING(f"  {warning}"))
    if access.role_created:
        command.stdout.write(f"  Make a login a member: GRANT {access.role} TO <login role>;")
