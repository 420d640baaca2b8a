"""Read-only SQL access to the per-dataset tables for a PostgreSQL role (docs/sql.md).

Every dataset's current records live in one typed table of the schema
``DATAFLOW["TABLE_SCHEMA"]``. Analysts' tools (psql, Metabase, Superset)
connect as a role of their own that may read exactly those tables:

    GRANT CONNECT ON DATABASE <db> TO <role>
    GRANT USAGE ON SCHEMA <schema> TO <role>
    GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO <role>
    ALTER DEFAULT PRIVILEGES FOR ROLE <app role> IN SCHEMA <schema> GRANT SELECT ON TABLES TO <role>

The last line matters because dataset tables come and go (a new dataset, a
table rebuilt for a new schema version): PostgreSQL gives a new table the
privileges its creator's default privileges name, and the creator is the
role the app connects as, which is the role running this command. Nothing
else is granted: no write, no privilege on the app's own tables in
``public`` (runs, users, sources and their secrets).

SQLite has no roles; there this is refused with a message saying so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from psycopg import sql

# Lowercase only: PostgreSQL folds unquoted names to lowercase, so the role
# people create with `CREATE ROLE Analyst` is "analyst"; accepting "Analyst"
# here would quote it and name a different role.
_ROLE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Names GRANT reads as something other than a role (PUBLIC is every role).
_SPECIAL_ROLE_NAMES = frozenset({"public", "none", "current_user", "current_role", "session_user"})


@dataclass
class SqlAccess:
    """What a grant or revoke did, for the command's summary and ``--json``."""

    role: str
    schema: str
    database: str
    owner: str  # the app's role, whose future tables the role may read
    role_created: bool = False
    statements: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "role": self.role,
            "schema": self.schema,
            "database": self.database,
            "owner": self.owner,
            "role_created": self.role_created,
            "statements": self.statements,
            "warnings": self.warnings,
        }


def _require_postgres() -> None:
    if connection.vendor != "postgresql":
        raise ValidationError(
            "SQL access roles are a PostgreSQL feature; this installation uses "
            f"{connection.display_name}, which has no roles. On SQLite, open the database "
            "file read-only instead (see docs/sql.md)."
        )


def _check_role_name(role: str) -> None:
    if not _ROLE_RE.fullmatch(role):
        raise ValidationError(
            f"{role!r} is not a role name this command accepts: use lowercase letters, digits and "
            "underscores, starting with a letter or underscore, at most 63 characters."
        )
    if role in _SPECIAL_ROLE_NAMES or role.startswith("pg_"):
        raise ValidationError(f"{role!r} is reserved by PostgreSQL; choose another role name.")


def _role_is_superuser(role: str) -> bool | None:
    """Whether an existing role is a superuser; ``None`` when there is no such role."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
    return bool(row[0]) if row else None


def _begin(role: str) -> tuple[SqlAccess, dict[str, sql.Identifier]]:
    _require_postgres()
    _check_role_name(role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        owner, database = cursor.fetchone()
    if role == owner:
        raise ValidationError(
            f"{role!r} is the role DataFlow connects as; it owns the tables already. Give analysts a role of their own."
        )
    access = SqlAccess(role=role, schema=settings.DATAFLOW["TABLE_SCHEMA"], database=database, owner=owner)
    names = {
        "role": sql.Identifier(role),
        "schema": sql.Identifier(access.schema),
        "database": sql.Identifier(database),
        "owner": sql.Identifier(owner),
    }
    return access, names


def _execute(access: SqlAccess, statement: sql.Composed) -> None:
    # Rendered to text first: the text is both what runs and what is reported.
    text = statement.as_string(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute(text)
    access.statements.append(text)


@contextmanager
def _one_transaction() -> Iterator[None]:
    """All statements or none; what PostgreSQL refuses becomes a one-line error.

    A failure half-way (say, the app's role may not create roles) then leaves
    neither a new role nor some of its grants behind.
    """
    try:
        with transaction.atomic():
            yield
    except DatabaseError as exc:
        raise ValidationError(f"PostgreSQL refused: {str(exc).strip()}") from exc


def sql_access_grant(*, role: str, create: bool = False) -> SqlAccess:
    """Let ``role`` read every dataset table, now and later, and nothing else.

    ``create`` creates the role when it does not exist, as a NOLOGIN group
    role: people's login roles are then made members of it
    (``GRANT analysts TO alice``) and share its access without sharing a
    password. Running it again changes nothing.
    """
    access, names = _begin(role)
    with _one_transaction():
        superuser = _role_is_superuser(role)
        if superuser is None:
            if not create:
                raise ValidationError(
                    f"There is no role {role!r}. Create it first (CREATE ROLE {role} LOGIN PASSWORD '…') "
                    "or pass --create for a group role that login roles are made members of."
                )
            _execute(access, sql.SQL("CREATE ROLE {role} NOLOGIN").format(**names))
            access.role_created = True
        elif superuser:
            access.warnings.append(f"{role!r} is a superuser: it can read and write everything whatever is granted.")
        _execute(access, sql.SQL("CREATE SCHEMA IF NOT EXISTS {schema}").format(**names))
        # PUBLIC usually has CONNECT already; a hardened database revokes it.
        _execute(access, sql.SQL("GRANT CONNECT ON DATABASE {database} TO {role}").format(**names))
        _execute(access, sql.SQL("GRANT USAGE ON SCHEMA {schema} TO {role}").format(**names))
        _execute(access, sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}").format(**names))
        _execute(
            access,
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}"
            ).format(**names),
        )
    return access


def sql_access_revoke(*, role: str) -> SqlAccess:
    """Take back what ``sql_access_grant`` gave ``role``.

    The role itself is kept (it may be someone's login, or hold other
    rights); once revoked it can be dropped with ``DROP ROLE``, which
    PostgreSQL refuses while any privilege, default privileges included,
    still names it. CONNECT goes too, for that reason: the role can still
    connect where PUBLIC may (PostgreSQL's default), but reads no dataset.
    """
    access, names = _begin(role)
    with _one_transaction():
        if _role_is_superuser(role) is None:
            raise ValidationError(f"There is no role {role!r}.")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [access.schema])
            schema_exists = cursor.fetchone() is not None
        if schema_exists:
            _execute(
                access,
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} REVOKE SELECT ON TABLES FROM {role}"
                ).format(**names),
            )
            _execute(access, sql.SQL("REVOKE SELECT ON ALL TABLES IN SCHEMA {schema} FROM {role}").format(**names))
            _execute(access, sql.SQL("REVOKE USAGE ON SCHEMA {schema} FROM {role}").format(**names))
        _execute(access, sql.SQL("REVOKE CONNECT ON DATABASE {database} FROM {role}").format(**names))
    return access
