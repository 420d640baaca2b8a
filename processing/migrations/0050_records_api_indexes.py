"""processing_record: drop two redundant indexes, and vacuum it sooner on PostgreSQL.

* ``processing_record_dataset_id_…`` repeats the leading column of
  ``uniq_record_dataset_key``, and ``record_last_run`` repeats the foreign
  key's own index on ``last_run_id``: each costs every upsert an index
  write and every query's planner a candidate, for no plan they win.
* Records are upserted in bulk: a re-load of a changed file rewrites a large
  share of the table, and PostgreSQL's default (vacuum past 20 % dead rows,
  analyse past 10 % changed) lets dead tuples and stale statistics pile up
  between runs, which slowed the records API by 20-30 % in our measurements.
  Vacuuming past 2 % dead rows and analysing past 1 % keeps pages and index
  entries lean; the insert threshold keeps the visibility map current after
  fresh loads (index-only scans, cheaper vacuums). Nothing to do on SQLite.
"""

from django.db import migrations, models

AUTOVACUUM = {
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_vacuum_threshold": "1000",
    "autovacuum_analyze_scale_factor": "0.01",
    "autovacuum_analyze_threshold": "1000",
    "autovacuum_vacuum_insert_scale_factor": "0.05",
}


def tune(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    settings = ", ".join(f"{k} = {v}" for k, v in AUTOVACUUM.items())
    schema_editor.execute(f"ALTER TABLE processing_record SET ({settings})")


def untune(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE processing_record RESET ({', '.join(AUTOVACUUM)})")


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0004_sources_push_notifications"),
        ("processing", "0006_source_permissions_for_groups"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="record", name="record_last_run"),
        migrations.AlterField(
            model_name="record",
            name="dataset",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="records",
                to="ingestion.dataset",
            ),
        ),
        migrations.RunPython(tune, untune, elidable=False),
    ]
