"""Every dataset's records move from the shared JSON table into a typed table of its own.

For each dataset with a schema, its table is created (``record_tables``)
and each record of ``processing_record`` is checked against the dataset's
current schema as a schema change checks stored values
(``record_schema.stored_converter``): records that pass are copied with
their lineage (first and last run, source line, the number of the schema
version that validated them, both timestamps); records that no longer pass
(kept from an earlier, looser schema version) are not dropped but
quarantined, as rejected rows of one run of kind ``schema_change`` per
dataset, with their values, messages and lineage. Values of fields no longer
in the schema are not carried over (the raw and processed files still hold
them). Then ``processing_record``, its reference triggers (migration 0051)
and its model go; on PostgreSQL the runs the new tables point at are checked
once per statement (``record_references``).

Going back moves the typed tables' records into ``processing_record`` again.
"""

import hashlib
import json

from django.db import migrations, models

BATCH = 2000
PARENTS = ("processing_run", "ingestion_dataset", "ingestion_schemaversion")
DROP_TRIGGERS = [
    *(f"DROP TRIGGER IF EXISTS {table}_records_guard ON {table}" for table in PARENTS),
    "DROP FUNCTION IF EXISTS processing_record_parent_guard()",
    "DROP TRIGGER IF EXISTS processing_record_refs_update ON processing_record",
    "DROP TRIGGER IF EXISTS processing_record_refs_insert ON processing_record",
    "DROP FUNCTION IF EXISTS processing_record_refs_check()",
]


def _records(cursor, dataset_id):
    """(key, data, first_run, last_run, line, schema_id, created, updated) of a dataset, in key order, in batches."""
    after = None
    while True:
        cursor.execute(
            "SELECT key, data, first_run_id, last_run_id, source_line, schema_id, created_at, updated_at "
            "FROM processing_record WHERE dataset_id = %s" + (" AND key > %s" if after is not None else "")
            + " ORDER BY key LIMIT %s",
            [dataset_id, *([after] if after is not None else []), BATCH],
        )
        rows = cursor.fetchall()
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1][0]


def _text(value):
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def move_records(apps, schema_editor):
    from django.utils import timezone

    from ingestion.fieldtypes import FieldError
    from ingestion.schema import schema_parse
    from processing.record_indexes import record_indexes_wanted
    from processing.record_references import references_install
    from processing.record_schema import stored_converter
    from processing.record_tables import record_table_create, table_exists, table_sql

    connection = schema_editor.connection
    Dataset = apps.get_model("ingestion", "Dataset")
    SchemaVersion = apps.get_model("ingestion", "SchemaVersion")
    Run = apps.get_model("processing", "Run")
    RejectedRow = apps.get_model("processing", "RejectedRow")
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        for statement in DROP_TRIGGERS:
            schema_editor.execute(statement, params=None)
    references_install()
    for dataset in Dataset.objects.exclude(current_schema=None).order_by("pk"):
        current = SchemaVersion.objects.get(pk=dataset.current_schema_id)
        spec = schema_parse(current.definition, stored=True)
        if not table_exists(dataset.slug):
            record_table_create(dataset.slug, spec, dataset.pk)
        numbers = dict(SchemaVersion.objects.filter(dataset=dataset).values_list("pk", "number"))
        converters = [(f, stored_converter(f)) for f in spec.fields]
        table = table_sql(dataset.slug)
        columns = ", ".join(quote(f.name) for f in spec.fields)
        insert = (
            f"INSERT INTO {table} (_key, {columns}, _first_run_id, _last_run_id, _source_line, _schema_version, "
            f"_created_at, _updated_at) VALUES ({', '.join(['%s'] * (len(spec.fields) + 7))})"
        )
        failing = []
        moved = 0
        with connection.cursor() as reader, connection.cursor() as writer:
            batch = []
            for key, data, first_run, last_run, line, schema_id, created, updated in _records(reader, dataset.pk):
                if isinstance(data, str):  # SQLite gives JSON back as text
                    data = json.loads(data)
                values, errors = [], {}
                for field, convert in converters:
                    try:
                        values.append(convert(_text(data.get(field.name))))
                    except FieldError as exc:
                        errors[field.name] = [str(exc)]
                if errors:
                    failing.append((key, data, first_run, last_run, line, errors))
                    continue
                if connection.vendor != "postgresql":
                    created = connection.ops.adapt_datetimefield_value(created)
                    updated = connection.ops.adapt_datetimefield_value(updated)
                batch.append((key, *values, first_run, last_run, line, numbers[schema_id], created, updated))
                if len(batch) >= BATCH:
                    writer.executemany(insert, batch)
                    moved += len(batch)
                    batch = []
            if batch:
                writer.executemany(insert, batch)
                moved += len(batch)
            for statement in record_indexes_wanted(dataset.slug, spec).values():
                writer.execute(statement)
        if failing:
            now = timezone.now()
            headers = [f.headers[0] for f in spec.fields]
            run = Run.objects.create(
                dataset=dataset,
                schema_id=current.pk,
                trigger="schema_change",
                status="partially_succeeded",
                rows_read=moved + len(failing),
                rows_valid=moved,
                rows_rejected=len(failing),
                rows_unchanged=moved,
                summary={
                    "schema_change": {
                        "to_version": current.number,
                        "records_checked": moved + len(failing),
                        "records_quarantined": len(failing),
                        "note": "records kept from earlier schema versions that the current one rejects, "
                        "quarantined when records moved into the dataset's typed table",
                    },
                    "headers": headers,
                },
                started_at=now,
                finished_at=now,
            )
            RejectedRow.objects.bulk_create(
                (
                    RejectedRow(
                        run=run,
                        line_number=line,
                        raw={h: _text(data.get(f.name)) for h, f in zip(headers, spec.fields)},
                        errors={
                            **errors,
                            "__row__": [
                                f"quarantined: stored under an earlier schema version, it does not pass version "
                                f"{current.number} (first loaded by run {first_run}, last written by run {last_run})"
                            ],
                        },
                        schema_id=current.pk,
                        created_at=now,
                    )
                    for key, data, first_run, last_run, line, errors in failing
                ),
                batch_size=1000,
            )


def move_records_back(apps, schema_editor):
    from ingestion.schema import schema_parse
    from processing.record_tables import json_value, table_exists, table_sql

    connection = schema_editor.connection
    Dataset = apps.get_model("ingestion", "Dataset")
    SchemaVersion = apps.get_model("ingestion", "SchemaVersion")
    quote = connection.ops.quote_name
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for dataset in Dataset.objects.exclude(current_schema=None).order_by("pk"):
        if not table_exists(dataset.slug):
            continue
        spec = schema_parse(SchemaVersion.objects.get(pk=dataset.current_schema_id).definition, stored=True)
        versions = dict(SchemaVersion.objects.filter(dataset=dataset).values_list("number", "pk"))
        columns = ", ".join(quote(f.name) for f in spec.fields)
        with connection.cursor() as reader, connection.cursor() as writer:
            reader.execute(
                f"SELECT _key, _first_run_id, _last_run_id, _source_line, _schema_version, _created_at, _updated_at, "
                f"{columns} FROM {table_sql(dataset.slug)} ORDER BY _key"
            )
            while rows := reader.fetchmany(BATCH):
                batch = []
                for key, first_run, last_run, line, number, created, updated, *values in rows:
                    data = encode({f.name: json_value(v) for f, v in zip(spec.fields, values)})
                    digest = hashlib.blake2b(data.encode(), digest_size=16).hexdigest()
                    batch.append((dataset.pk, key, data, digest, first_run, last_run, line, versions[number], created, updated))
                writer.executemany(
                    "INSERT INTO processing_record (dataset_id, key, data, content_hash, first_run_id, last_run_id, "
                    "source_line, schema_id, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    batch,
                )
            writer.execute(f"DROP TABLE {table_sql(dataset.slug)}")
    if connection.vendor == "postgresql":
        from processing.record_references import UNINSTALL_SQL

        for statement in UNINSTALL_SQL:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0005_raw_file_dialect_sources"),
        ("processing", "0052_run_enqueued_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="trigger",
            field=models.CharField(
                choices=[
                    ("command", "Command"),
                    ("admin", "Admin"),
                    ("api", "Api"),
                    ("schedule", "Schedule"),
                    ("schema_change", "Schema Change"),
                ],
                default="command",
                max_length=16,
            ),
        ),
        migrations.RunPython(move_records, move_records_back),
        migrations.DeleteModel(name="Record"),
    ]
