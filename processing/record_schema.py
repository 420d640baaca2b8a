"""Schema changes that keep every stored record true.

When a dataset's schema changes, its table changes with it
(``record_table_sync``): new fields become nullable columns, removed fields'
columns go, and a field whose type or rules changed has every stored value
checked against the new version (``records_check``) and, where the type
changed, converted. Records that no longer pass move into quarantine: they
become rejected rows of a run of kind ``schema_change`` (their values,
messages and lineage kept, fixable with the fix loop) and leave the table.
After a change every stored record satisfies the current schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from django.db import connection

from ingestion.fieldtypes import Converter, FieldError, field_type
from ingestion.models import Dataset, SchemaVersion
from ingestion.record_store import StoredRecordsReport
from ingestion.schema import FieldSpec, SchemaSpec

from .lifecycle import run_inline_finish, run_inline_start
from .models import RejectedRow, Run, RunStatus, RunTrigger
from .pipeline.fields import compile_field
from .pipeline.validate import ROW_ERRORS, natural_key
from .record_indexes import record_indexes_drop, record_indexes_sync
from .record_tables import (
    LINEAGE_COLUMNS,
    RecordBase,
    column_type,
    json_value,
    record_model,
    record_table_create,
    record_table_drop,
    table_columns,
    table_exists,
    table_sql,
)

# Failures listed in a preview; the count covers them all.
PREVIEW_FAILURES = 20
_BATCH = 2000


def stored_text(value: Any) -> str:
    """A stored value as the text a file would hold (what the fix loop shows and reloads)."""
    value = json_value(value)
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def stored_converter(spec: FieldSpec) -> Converter:
    """The field's rules applied to a value already stored in its canonical form.

    Transforms, null markers, separators and input formats describe files,
    not stored values, so they are left out; type, ``required`` and the
    constraints apply as they do to a file's values.
    """
    options = {k: v for k, v in spec.options.items() if k == "default_timezone"}
    return compile_field(dataclasses.replace(spec, transforms=(), null_values=(), options=options))


def _rules(spec: FieldSpec) -> tuple[Any, ...]:
    return (spec.type, spec.required, spec.constraints, spec.options.get("default_timezone"))


def fields_to_check(old: SchemaSpec, new: SchemaSpec) -> list[FieldSpec]:
    """New fields whose rules may fail a stored value: changed rules, or a new required field."""
    before = {f.name: f for f in old.fields}
    return [
        f
        for f in new.fields
        if (f.name in before and _rules(before[f.name]) != _rules(f)) or (f.name not in before and f.required)
    ]


def _walk(model: type[RecordBase]) -> Iterator[list[RecordBase]]:
    """Every record of the table in key order, in batches (keyset, so memory stays flat)."""
    after: str | None = None
    while True:
        batch = model.objects.order_by("key")
        if after is not None:
            batch = batch.filter(key__gt=after)
        rows = list(batch[:_BATCH])
        if rows:
            yield rows
        if len(rows) < _BATCH:
            return
        after = rows[-1].key


def _plan(slug: str, old: SchemaSpec, new: SchemaSpec) -> StoredRecordsReport:
    found = {n: t for n, t in table_columns(slug).items() if n not in LINEAGE_COLUMNS}
    return StoredRecordsReport(
        columns_added=[f.name for f in new.fields if f.name not in found],
        columns_dropped=[n for n in found if n not in {f.name for f in new.fields}],
        columns_converted=[f.name for f in new.fields if f.name in found and found[f.name] != column_type(f)],
    )


class _Sink:
    """Where a check sends what it finds: nothing for a preview, the table and the quarantine when applying."""

    def passed(self, batch: list[tuple[RecordBase, dict[str, Any]]]) -> None:
        """Records that pass, with their converted values."""

    def failed(self, batch: list[tuple[RecordBase, dict[str, list[str]]]]) -> None:
        """Records that no longer pass, with their messages."""


def records_check(
    dataset: Dataset, old: SchemaSpec, new: SchemaSpec, *, sink: _Sink | None = None
) -> tuple[StoredRecordsReport, dict[str, str]]:
    """Check the stored records against ``new``, a batch at a time (memory stays flat).

    Returns the report and the keys that change (old → new): when a key
    field changes type, a record's key is its new values' key (``"007"`` as
    an integer is ``7``), and a record whose new key another record has too
    fails (the one keeping its own key wins, else the first in key order).
    Only that key map grows with the table, and only when a key field's type
    changes.
    """
    check = _plan(dataset.slug, old, new)
    sink = sink or _Sink()
    checked = {f.name: f for f in fields_to_check(old, new)}
    for name in check.columns_converted:
        checked.setdefault(name, next(f for f in new.fields if f.name == name))
    if not checked or not table_exists(dataset.slug):
        return check, {}
    model = record_model(dataset.slug, old)
    converters = {name: stored_converter(spec) for name, spec in checked.items()}
    before = {f.name: f.type for f in old.fields}
    key_types = {f.name: field_type(f.type) for f in new.fields if f.name in new.key}
    rekey = any(name in checked and before.get(name) != kind.name for name, kind in key_types.items())
    owners: dict[str, str] = {}  # new key -> the old key of the record holding it
    losers: dict[str, str] = {}  # old key -> why it fails

    def fail(batch: list[tuple[RecordBase, dict[str, list[str]]]]) -> None:
        check.records_failing += len(batch)
        for record, errors in batch[: max(0, PREVIEW_FAILURES - len(check.failures))]:
            check.failures.append({"key": record.key, "source_line": record.source_line, "errors": errors})
        sink.failed(batch)

    for records in _walk(model):
        passing: list[tuple[RecordBase, dict[str, Any]]] = []
        failing: list[tuple[RecordBase, dict[str, list[str]]]] = []
        for record in records:
            check.records_checked += 1
            errors: dict[str, list[str]] = {}
            new_values: dict[str, Any] = {}
            for name, convert in converters.items():
                attribute = model.field_attributes.get(name)
                text = stored_text(getattr(record, attribute)) if attribute else ""
                try:
                    new_values[name] = convert(text)
                except FieldError as exc:
                    errors[name] = [str(exc)]
            if errors:
                failing.append((record, errors))
                continue
            passing.append((record, new_values))
            if rekey:
                values = {n: new_values[n] if n in new_values else record.data[n] for n in new.key}
                key = natural_key([key_types[n].key_text(values[n]) for n in new.key])
                holder = owners.get(key)
                if holder is None:
                    owners[key] = record.key
                    continue
                keeps_own = key == record.key and holder != key
                loser, winner = (holder, record.key) if keeps_own else (record.key, holder)
                owners[key] = winner
                losers[loser] = f"its key becomes {key!r} under the new schema, the key of record {winner!r}"
        sink.passed(passing)
        fail(failing)
    keys = list(losers)
    for i in range(0, len(keys), _BATCH):
        fail([(r, {ROW_ERRORS: [losers[r.key]]}) for r in model.objects.filter(key__in=keys[i : i + _BATCH])])
    return check, {old_key: key for key, old_key in owners.items() if key != old_key and old_key not in losers}


def record_table_sync(
    *, dataset: Dataset, old: SchemaSpec | None, new: SchemaSpec, version: SchemaVersion, user: Any = None
) -> StoredRecordsReport:
    """Bring the dataset's table to ``new`` (the schema just applied), quarantining what no longer fits.

    Runs inside the transaction that applies the schema: the check, the
    quarantine and the change of the table commit with it, or not at all.
    """
    slug = dataset.slug
    if not table_exists(slug):
        record_table_create(slug, new, dataset.pk)
        record_indexes_sync(dataset, new)
        return StoredRecordsReport(columns_added=[f.name for f in new.fields])
    if old is None:
        old = new
    plan = _plan(slug, old, new)
    if connection.vendor == "sqlite" and (plan.columns_dropped or plan.columns_converted):
        # SQLite cannot drop an indexed column: the field indexes go first and come back after.
        record_indexes_drop(slug)
    applying = _Applying(dataset, old, new, version, plan, user)
    check, rekeyed = records_check(dataset, old, new, sink=applying)
    if check.records_checked:
        check.run_id = applying.finish(check).pk
        check.records_quarantined = check.records_failing
    applying.alter()
    _rekey(dataset, rekeyed)
    record_indexes_sync(dataset, new)
    return check


class TypedTableStore:
    """The record store ``ingestion`` calls on schema changes (registered in ``ProcessingConfig.ready``)."""

    def schema_preview(self, *, dataset: Dataset, old: SchemaSpec | None, new: SchemaSpec) -> StoredRecordsReport:
        if old is None:
            return StoredRecordsReport(columns_added=[f.name for f in new.fields])
        check, _ = records_check(dataset, old, new)
        return check

    def schema_applied(
        self, *, dataset: Dataset, old: SchemaSpec | None, new: SchemaSpec, version: SchemaVersion, user: Any
    ) -> StoredRecordsReport:
        return record_table_sync(dataset=dataset, old=old, new=new, version=version, user=user)

    def dataset_deleted(self, *, dataset: Dataset) -> None:
        record_table_drop(dataset.slug)


class _Applying(_Sink):
    """Applying a schema change: converted values go into new columns, failing records into quarantine.

    Each batch is written as the check walks the table, so memory stays flat.
    """

    def __init__(
        self,
        dataset: Dataset,
        old: SchemaSpec,
        new: SchemaSpec,
        version: SchemaVersion,
        plan: StoredRecordsReport,
        user: Any,
    ) -> None:
        self.dataset, self.old, self.version, self.plan = dataset, old, version, plan
        self.table = table_sql(dataset.slug)
        self.model = record_model(dataset.slug, old)
        self.headers = [f.headers[0] for f in old.fields]
        self.by_name = {f.name: f for f in new.fields}
        quote = connection.ops.quote_name
        # Converted values go into a new column each, which then replaces the old one.
        self.temporary = {name: quote(f"_converting_{i}") for i, name in enumerate(plan.columns_converted)}
        with connection.cursor() as cur:
            for name, column in self.temporary.items():
                cur.execute(f"ALTER TABLE {self.table} ADD COLUMN {column} {column_type(self.by_name[name])}")
        self.user = user
        self._run: Run | None = None

    @property
    def run(self) -> Run:
        """The schema-change run, made when the first record is checked (a change that checks none has none)."""
        if self._run is None:
            self._run = run_inline_start(
                dataset=self.dataset,
                schema=self.version,
                trigger=RunTrigger.SCHEMA_CHANGE,
                started_by=self.user if getattr(self.user, "pk", None) else None,
                # The fix loop writes rejected rows back as a file with these columns.
                summary={"headers": self.headers},
            )
        return self._run

    def passed(self, batch: list[tuple[RecordBase, dict[str, Any]]]) -> None:
        if not batch:
            return
        with connection.cursor() as cur:
            for name, column in self.temporary.items():
                values = [(record.key, new_values[name]) for record, new_values in batch]
                _set_values(cur, self.table, column, column_type(self.by_name[name]), values)

    def failed(self, batch: list[tuple[RecordBase, dict[str, list[str]]]]) -> None:
        if not batch:
            return
        rows = []
        for record, errors in batch:
            raw = {
                h: stored_text(getattr(record, record.field_attributes[f.name]))
                for h, f in zip(self.headers, self.old.fields, strict=True)
            }
            lineage = f"first loaded by run {record.first_run_id}, last written by run {record.last_run_id}"
            message = f"quarantined by the change to schema version {self.version.number} ({lineage})"
            rows.append(
                RejectedRow(
                    run=self.run,
                    line_number=record.source_line,
                    raw=raw,
                    errors={**errors, ROW_ERRORS: [*errors.get(ROW_ERRORS, []), message]},
                    schema=self.version,
                )
            )
        RejectedRow.objects.bulk_create(rows, batch_size=1000)
        self.model.objects.filter(key__in=[record.key for record, _ in batch]).delete()

    def finish(self, check: StoredRecordsReport) -> Run:
        """Record the check as the run's outcome."""
        run = self.run
        failing = check.records_failing
        run.rows_read = check.records_checked
        run.rows_valid = run.rows_unchanged = check.records_checked - failing
        run.rows_rejected = failing
        run.summary["schema_change"] = {
            "to_version": self.version.number,
            "records_checked": check.records_checked,
            "records_quarantined": failing,
            "columns_added": check.columns_added,
            "columns_dropped": check.columns_dropped,
            "columns_converted": check.columns_converted,
        }
        run_inline_finish(run, RunStatus.PARTIALLY_SUCCEEDED if failing else RunStatus.SUCCEEDED)
        return run

    def alter(self) -> None:
        """The columns: converted ones replace theirs, new ones are added, removed ones dropped."""
        quote = connection.ops.quote_name
        with connection.cursor() as cur:
            for name, column in self.temporary.items():
                cur.execute(f"ALTER TABLE {self.table} DROP COLUMN {quote(name)}")
                cur.execute(f"ALTER TABLE {self.table} RENAME COLUMN {column} TO {quote(name)}")
            for name in self.plan.columns_added:
                cur.execute(f"ALTER TABLE {self.table} ADD COLUMN {quote(name)} {column_type(self.by_name[name])}")
            for name in self.plan.columns_dropped:
                cur.execute(f"ALTER TABLE {self.table} DROP COLUMN {quote(name)}")


def _set_values(cur: Any, table: str, column: str, sql_type: str, values: list[tuple[str, Any]]) -> None:
    """Set ``column`` of the given keys: one statement a batch on PostgreSQL (its checks run per statement)."""
    if connection.vendor != "postgresql":
        cur.executemany(f"UPDATE {table} SET {column} = %s WHERE _key = %s", [(v, k) for k, v in values])
        return
    rows = ", ".join(["(%s::text, %s::text)"] * len(values))
    cur.execute(
        f"UPDATE {table} t SET {column} = v.value::{sql_type} "
        f"FROM (VALUES {rows}) AS v(key, value) WHERE t._key = v.key",
        [item for pair in values for item in pair],
    )


def _rekey(dataset: Dataset, rekeyed: dict[str, str]) -> None:
    """Give records the keys their converted key fields make (after the quarantine, none collide)."""
    table = table_sql(dataset.slug)
    pairs = list(rekeyed.items())
    with connection.cursor() as cur:
        for i in range(0, len(pairs), 1000):
            cur.executemany(
                f"UPDATE {table} SET _key = %s WHERE _key = %s", [(new, old) for old, new in pairs[i : i + 1000]]
            )
