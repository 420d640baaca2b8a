"""Read-only SQL access to the dataset tables: what a granted role can and cannot do.

The PostgreSQL tests connect as the granted role over a connection of its
own, as an analyst's tool would, and ask the server itself; nothing is
inferred from the statements the command prints. Roles are cluster-wide, so
each test names its roles uniquely and drops them afterwards; the tables
live in a schema of the test's own (``DATASETS_DB_SCHEMA``), dropped too.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import errors, sql

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQL access roles are PostgreSQL's (run with DATABASE_URL=postgres://…)",
)


def run_command(*args: Any, **options: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def app_execute(statement: sql.Composable | str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run a statement as the app's own role (Django's connection, autocommit in these tests)."""
    connection.ensure_connection()
    text = statement if isinstance(statement, str) else statement.as_string(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute(text, params)
        return cursor.fetchall() if cursor.description else []


def connect_as(role: str) -> psycopg.Connection[Any]:
    """A connection of the role's own to the test database, as psql or Metabase would open."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        dbname=db["NAME"],
        user=role,
        autocommit=True,
    )


@pytest.fixture
def schema(settings: Any) -> Iterator[str]:
    """A datasets schema of this test's own, dropped with its tables afterwards."""
    name = f"sqlaccess_{uuid.uuid4().hex[:10]}"
    settings.DATAFLOW = {**settings.DATAFLOW, "TABLE_SCHEMA": name}
    yield name
    app_execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def role_name() -> Iterator[Callable[[], str]]:
    """Unique role names; every role of those names is dropped (with its privileges) at the end."""
    names: list[str] = []

    def new() -> str:
        names.append(f"sqlaccess_{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield new
    for name in reversed(names):  # members before the group roles they belong to
        if app_execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]):
            app_execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            app_execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def login_role(role_name: Callable[[], str]) -> str:
    """An analyst's login role, as an operator would create it (trust auth: no password needed here)."""
    name = role_name()
    app_execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    return name


def dataset_table(schema: str, slug: str) -> None:
    """A table shaped like a dataset's: typed field columns, then the lineage columns, with one record."""
    app_execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    table = sql.Identifier(schema, slug)
    app_execute(
        sql.SQL(
            "CREATE TABLE {} (id text, value numeric, quantity bigint, is_active boolean, "
            "_key text PRIMARY KEY, _first_run_id bigint, _last_run_id bigint, _source_line bigint, "
            "_schema_version integer, _created_at timestamptz, _updated_at timestamptz)"
        ).format(table)
    )
    app_execute(sql.SQL("INSERT INTO {} VALUES ('S1', 1.50, 2, true, 'S1', 1, 1, 2, 1, now(), now())").format(table))


def select_all(conn: psycopg.Connection[Any], schema: str, slug: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql.SQL("SELECT id, quantity FROM {}").format(sql.Identifier(schema, slug))).fetchall()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_login_role_reads_the_dataset_tables_there_are_and_those_created_later(schema: str, login_role: str) -> None:
    dataset_table(schema, "sales")
    run_command("sql_access_grant", login_role)
    dataset_table(schema, "later")  # by the app's role, after the grant: a new dataset

    with connect_as(login_role) as analyst:
        assert select_all(analyst, schema, "sales") == [("S1", 2)]
        assert select_all(analyst, schema, "later") == [("S1", 2)]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_role_cannot_change_any_dataset_table(schema: str, login_role: str) -> None:
    dataset_table(schema, "sales")
    run_command("sql_access_grant", login_role)
    dataset_table(schema, "later")
    table, later = sql.Identifier(schema, "sales"), sql.Identifier(schema, "later")
    attempts = [
        sql.SQL("INSERT INTO {} (_key) VALUES ('S2')").format(table),
        sql.SQL("UPDATE {} SET quantity = 3").format(table),
        sql.SQL("DELETE FROM {}").format(table),
        sql.SQL("TRUNCATE {}").format(table),
        sql.SQL("DELETE FROM {}").format(later),
        sql.SQL("DROP TABLE {}").format(later),
        sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(schema, "mine")),
        sql.SQL("CREATE INDEX ON {} (quantity)").format(table),
    ]

    with connect_as(login_role) as analyst:
        for attempt in attempts:
            with pytest.raises(errors.InsufficientPrivilege):
                analyst.execute(attempt)

    assert app_execute(sql.SQL("SELECT id, quantity FROM {}").format(table)) == [("S1", 2)]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_role_cannot_read_the_apps_own_tables(schema: str, login_role: str) -> None:
    dataset_table(schema, "sales")
    run_command("sql_access_grant", login_role)
    # Every table, view and sequence outside the datasets schema and the system catalogs.
    others = """
        SELECT n.nspname || '.' || c.relname, has_any_column_privilege(c.oid, 'SELECT')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', %s) AND n.nspname NOT LIKE 'pg\\_%%'
    """

    with connect_as(login_role) as analyst:
        readable = dict(analyst.execute(others, [schema]).fetchall())
        with pytest.raises(errors.InsufficientPrivilege):
            analyst.execute("SELECT * FROM processing_run")
        with pytest.raises(errors.InsufficientPrivilege):
            analyst.execute("SELECT * FROM ingestion_source")

    assert {"public.processing_run", "public.processing_rejectedrow", "public.auth_user"} <= readable.keys()
    assert [name for name, can_read in readable.items() if can_read] == []


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_create_makes_a_group_role_whose_members_read_the_tables(
    schema: str, role_name: Callable[[], str], login_role: str
) -> None:
    group = role_name()
    dataset_table(schema, "sales")

    result = json.loads(run_command("sql_access_grant", group, create=True, json=True))
    app_execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login_role)))

    assert (result["role"], result["schema"], result["role_created"]) == (group, schema, True)
    assert app_execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [group]) == [(False,)]
    with connect_as(login_role) as analyst:
        assert select_all(analyst, schema, "sales") == [("S1", 2)]
        with pytest.raises(errors.InsufficientPrivilege):
            analyst.execute("SELECT * FROM processing_run")
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        connect_as(group)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_granting_again_changes_nothing(schema: str, login_role: str) -> None:
    dataset_table(schema, "sales")
    privileges = """
        SELECT (SELECT relacl::text FROM pg_class WHERE oid = %s::regclass),
               (SELECT nspacl::text FROM pg_namespace WHERE nspname = %s),
               (SELECT string_agg(defaclacl::text, ',') FROM pg_default_acl d
                  JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE n.nspname = %s)
    """
    params = [f'"{schema}"."sales"', schema, schema]

    first = json.loads(run_command("sql_access_grant", login_role, json=True))
    after_first = app_execute(privileges, params)
    second = json.loads(run_command("sql_access_grant", login_role, json=True))

    assert app_execute(privileges, params) == after_first
    assert login_role in after_first[0][0] and login_role in after_first[0][2]
    assert (first["role_created"], second["role_created"]) == (False, False)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_revoke_takes_the_access_back_and_the_role_can_then_be_dropped(schema: str, login_role: str) -> None:
    dataset_table(schema, "sales")
    run_command("sql_access_grant", login_role)

    out = run_command("sql_access_revoke", login_role)
    dataset_table(schema, "later")

    assert "may no longer read" in out
    with connect_as(login_role) as analyst:
        for slug in ("sales", "later"):
            with pytest.raises(errors.InsufficientPrivilege):
                select_all(analyst, schema, slug)
    # No privilege, default privileges included, names the role any more.
    app_execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(login_role)))


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "role",
    ["Analyst", 'x"; DROP TABLE processing_run; --', "x y", "", "9lives", "a" * 64, "public", "current_user", "pg_x"],
)
def test_it_refuses_anything_but_a_plain_lowercase_role_name(schema: str, role: str) -> None:
    roles_before = app_execute("SELECT count(*) FROM pg_roles")

    with pytest.raises(CommandError, match=r"role name|reserved"):
        run_command("sql_access_grant", role, create=True)

    assert app_execute("SELECT count(*) FROM pg_roles") == roles_before
    assert app_execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]) == []
    assert app_execute("SELECT count(*) FROM processing_run") == [(0,)]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_it_refuses_the_role_the_app_connects_as(schema: str) -> None:
    (owner,) = app_execute("SELECT current_user")[0]

    for command in ("sql_access_grant", "sql_access_revoke"):
        with pytest.raises(CommandError, match="DataFlow connects as"):
            run_command(command, owner)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_missing_role_needs_create(schema: str, role_name: Callable[[], str]) -> None:
    role = role_name()

    with pytest.raises(CommandError, match=r"There is no role .* --create"):
        run_command("sql_access_grant", role)

    assert app_execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]) == []
    assert app_execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]) == []


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_what_postgres_refuses_is_a_one_line_error_and_leaves_nothing(
    schema: str, role_name: Callable[[], str], login_role: str
) -> None:
    # The app connecting as a role that may not create roles.
    role = role_name()
    app_execute(sql.SQL("SET ROLE {}").format(sql.Identifier(login_role)))
    try:
        with pytest.raises(CommandError, match="PostgreSQL refused: permission denied to create role"):
            run_command("sql_access_grant", role, create=True)
    finally:
        app_execute("RESET ROLE")

    assert app_execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]) == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite message is for the embedded database")
@pytest.mark.django_db
@pytest.mark.parametrize("command", ["sql_access_grant", "sql_access_revoke"])
def test_on_sqlite_it_says_sql_access_roles_are_a_postgresql_feature(command: str) -> None:
    with pytest.raises(CommandError, match="SQL access roles are a PostgreSQL feature") as exc:
        run_command(command, "analyst")

    assert "SQLite" in str(exc.value)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_analyst_reads_a_loaded_dataset_as_the_api_serves_it(
    schema: str, login_role: str, csv_file: Callable[..., Any]
) -> None:
    from ingestion.services.datasets import dataset_apply
    from processing.services.runs import file_ingest
    from tests.conftest import SALES_HEADER, sales_row
    from tests.records import records

    run_command("sql_access_grant", login_role)
    from ingestion.schema import schema_parse
    from tests.conftest import SALES_SCHEMA

    sales = dataset_apply(spec=schema_parse(SALES_SCHEMA)).dataset  # its table is made after the grant
    path = csv_file("\n".join([SALES_HEADER, sales_row(1), sales_row(2, quantity=7)]) + "\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name=path.name)

    with connect_as(login_role) as analyst:
        rows = analyst.execute(
            sql.SQL("SELECT _key, quantity, value::text, _last_run_id FROM {} ORDER BY _key").format(
                sql.Identifier(schema, "sales")
            )
        ).fetchall()
    served = [(r.key, r.data["quantity"], r.data["value"], r.last_run_id) for r in records(sales).order_by("key")]
    assert rows == served and [r[3] for r in rows] == [run.pk, run.pk]
