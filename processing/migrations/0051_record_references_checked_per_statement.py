"""processing_record: check its four references once per statement, not once per row.

A foreign key's check is a query per inserted row (and per updated row
whose reference changes). With four of them, a fresh load of 1M rows spent
about a fifth of its time in those checks at commit. On PostgreSQL the
constraints are replaced by statement-level triggers that check every
reference of a statement's new rows at once, taking the same ``FOR KEY
SHARE`` locks on what they point at, and by triggers on the three tables
pointed at that refuse to delete a row records still point at. Both raise
``foreign_key_violation`` (an ``IntegrityError`` in Django), as the foreign
keys did; the checks now run when the statement ends instead of at commit.

SQLite keeps no check of its own: a trigger there that names another table
breaks Django's later rebuilds of that table ("error in trigger …: no such
table"), and the ORM's ``on_delete`` handling guards deletes. Primary keys
are never changed by the application, so updates of them are not guarded.
"""

import django.db.models.deletion
from django.db import migrations, models

PARENTS = ("processing_run", "ingestion_dataset", "ingestion_schemaversion")

CREATE_SQL = [
    """
    CREATE FUNCTION processing_record_refs_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        missing text;
    BEGIN
        -- Lock what the statement's rows point at, as a foreign key's check does,
        -- so a concurrent delete waits for this transaction or is seen to have won.
        PERFORM 1 FROM processing_run
            WHERE id IN (SELECT first_run_id FROM new_records UNION SELECT last_run_id FROM new_records)
            FOR KEY SHARE;
        PERFORM 1 FROM ingestion_dataset WHERE id IN (SELECT dataset_id FROM new_records) FOR KEY SHARE;
        PERFORM 1 FROM ingestion_schemaversion WHERE id IN (SELECT schema_id FROM new_records) FOR KEY SHARE;
        SELECT format('run %s', ids.id) INTO missing
            FROM (SELECT first_run_id AS id FROM new_records UNION SELECT last_run_id FROM new_records) ids
            WHERE NOT EXISTS (SELECT 1 FROM processing_run r WHERE r.id = ids.id) LIMIT 1;
        IF missing IS NULL THEN
            SELECT format('dataset %s', ids.id) INTO missing
                FROM (SELECT DISTINCT dataset_id AS id FROM new_records) ids
                WHERE NOT EXISTS (SELECT 1 FROM ingestion_dataset d WHERE d.id = ids.id) LIMIT 1;
        END IF;
        IF missing IS NULL THEN
            SELECT format('schema version %s', ids.id) INTO missing
                FROM (SELECT DISTINCT schema_id AS id FROM new_records) ids
                WHERE NOT EXISTS (SELECT 1 FROM ingestion_schemaversion s WHERE s.id = ids.id) LIMIT 1;
        END IF;
        IF missing IS NOT NULL THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('a record refers to %s, which does not exist', missing),
                TABLE = 'processing_record';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER processing_record_refs_insert AFTER INSERT ON processing_record
        REFERENCING NEW TABLE AS new_records FOR EACH STATEMENT EXECUTE FUNCTION processing_record_refs_check()
    """,
    """
    CREATE TRIGGER processing_record_refs_update AFTER UPDATE ON processing_record
        REFERENCING NEW TABLE AS new_records FOR EACH STATEMENT EXECUTE FUNCTION processing_record_refs_check()
    """,
    """
    CREATE FUNCTION processing_record_parent_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        kept bigint;
    BEGIN
        IF TG_TABLE_NAME = 'processing_run' THEN
            SELECT o.id INTO kept FROM old_rows o WHERE EXISTS (
                SELECT 1 FROM processing_record r WHERE r.first_run_id = o.id
            ) OR EXISTS (
                SELECT 1 FROM processing_record r WHERE r.last_run_id = o.id
            ) LIMIT 1;
        ELSIF TG_TABLE_NAME = 'ingestion_dataset' THEN
            SELECT o.id INTO kept FROM old_rows o
                WHERE EXISTS (SELECT 1 FROM processing_record r WHERE r.dataset_id = o.id) LIMIT 1;
        ELSE
            SELECT o.id INTO kept FROM old_rows o
                WHERE EXISTS (SELECT 1 FROM processing_record r WHERE r.schema_id = o.id) LIMIT 1;
        END IF;
        IF kept IS NOT NULL THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('%s %s is still referred to by records', TG_TABLE_NAME, kept),
                TABLE = TG_TABLE_NAME;
        END IF;
        RETURN NULL;
    END $$
    """,
    *(
        f"""
        CREATE TRIGGER {table}_records_guard AFTER DELETE ON {table}
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION processing_record_parent_guard()
        """
        for table in PARENTS
    ),
]

DROP_SQL = [
    *(f"DROP TRIGGER IF EXISTS {table}_records_guard ON {table}" for table in PARENTS),
    "DROP FUNCTION IF EXISTS processing_record_parent_guard()",
    "DROP TRIGGER IF EXISTS processing_record_refs_update ON processing_record",
    "DROP TRIGGER IF EXISTS processing_record_refs_insert ON processing_record",
    "DROP FUNCTION IF EXISTS processing_record_refs_check()",
]


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE_SQL:
            schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP_SQL:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0004_sources_push_notifications"),
        ("processing", "0050_records_api_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="record",
            name="dataset",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="records",
                to="ingestion.dataset",
            ),
        ),
        migrations.AlterField(
            model_name="record",
            name="first_run",
            field=models.ForeignKey(
                db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="processing.run"
            ),
        ),
        migrations.AlterField(
            model_name="record",
            name="last_run",
            field=models.ForeignKey(
                db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="processing.run"
            ),
        ),
        migrations.AlterField(
            model_name="record",
            name="schema",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="ingestion.schemaversion",
            ),
        ),
        # After the constraints are gone (reversed: before they come back).
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
