"""A record's runs, checked once per statement on PostgreSQL instead of once per row.

Every dataset table's ``_first_run_id`` and ``_last_run_id`` point at
``processing_run``. Foreign keys would check that with a query per inserted
row: measured, that doubled the merge of a fresh load (about 10 s per
million rows for the two keys). On PostgreSQL they are statement-level
triggers instead, which refuse what the foreign keys refused, with the same
error (``foreign_key_violation``, an ``IntegrityError`` in Django) and the
same locks:

* after each INSERT or UPDATE of the run columns of a dataset table, every
  run the statement's rows point at is locked ``FOR KEY SHARE`` (as a
  foreign key's check does, so a concurrent delete waits, or is seen to
  have won) and must exist;
* after a DELETE on ``processing_run``, none of the deleted runs may still
  be pointed at by its dataset's table. The table is found by its comment
  (``dataflow records of dataset <id>``), so the guard needs neither the
  schema's name nor the table-naming rule.

SQLite (the embedded default) keeps ordinary foreign keys in its tables.
"""

from __future__ import annotations

from django.db import connection

COMMENT = "dataflow records of dataset {dataset_id}"

INSTALL_SQL = [
    """
    CREATE OR REPLACE FUNCTION dataflow_record_runs_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        missing bigint;
    BEGIN
        PERFORM 1 FROM processing_run
            WHERE id IN (SELECT _first_run_id FROM new_records UNION SELECT _last_run_id FROM new_records)
            FOR KEY SHARE;
        SELECT ids.id INTO missing
            FROM (SELECT _first_run_id AS id FROM new_records UNION SELECT _last_run_id FROM new_records) ids
            WHERE NOT EXISTS (SELECT 1 FROM processing_run r WHERE r.id = ids.id) LIMIT 1;
        IF missing IS NOT NULL THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('a record of %s refers to run %s, which does not exist', TG_TABLE_NAME, missing),
                TABLE = TG_TABLE_NAME;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION dataflow_run_records_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        target record;
        kept bigint;
    BEGIN
        FOR target IN
            SELECT c.oid::regclass AS tbl, array_agg(o.id) AS ids
            FROM old_rows o
            JOIN pg_description d ON d.description = format('dataflow records of dataset %s', o.dataset_id)
                AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
            JOIN pg_class c ON c.oid = d.objoid
            GROUP BY c.oid
        LOOP
            EXECUTE format(
                'SELECT r FROM unnest($1) r WHERE EXISTS (SELECT 1 FROM %s t WHERE t._last_run_id = r) '
                'OR EXISTS (SELECT 1 FROM %s t WHERE t._first_run_id = r) LIMIT 1',
                target.tbl, target.tbl
            ) INTO kept USING target.ids;
            IF kept IS NOT NULL THEN
                RAISE foreign_key_violation USING
                    MESSAGE = format('run %s is still referred to by records of %s', kept, target.tbl),
                    TABLE = 'processing_run';
            END IF;
        END LOOP;
        RETURN NULL;
    END $$
    """,
    "DROP TRIGGER IF EXISTS dataflow_run_records_guard ON processing_run",
    """
    CREATE TRIGGER dataflow_run_records_guard AFTER DELETE ON processing_run
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dataflow_run_records_guard()
    """,
]

UNINSTALL_SQL = [
    "DROP TRIGGER IF EXISTS dataflow_run_records_guard ON processing_run",
    "DROP FUNCTION IF EXISTS dataflow_run_records_guard()",
    "DROP FUNCTION IF EXISTS dataflow_record_runs_check() CASCADE",
]


def table_references_sql(table: str, dataset_id: int) -> list[str]:
    """What one dataset table needs: the comment the guard finds it by, and its two checks."""
    comment = COMMENT.format(dataset_id=int(dataset_id))
    return [
        f"COMMENT ON TABLE {table} IS '{comment}'",
        f"CREATE TRIGGER dataflow_runs_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_records "
        "FOR EACH STATEMENT EXECUTE FUNCTION dataflow_record_runs_check()",
        f"CREATE TRIGGER dataflow_runs_update AFTER UPDATE ON {table} REFERENCING NEW TABLE AS new_records "
        "FOR EACH STATEMENT EXECUTE FUNCTION dataflow_record_runs_check()",
    ]


def references_install() -> None:
    """Create (or bring up to date) the functions and the guard on runs; PostgreSQL only."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        for statement in INSTALL_SQL:
            cur.execute(statement)
