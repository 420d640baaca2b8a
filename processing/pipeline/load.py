"""Load: upsert validated rows by natural key into the dataset's table, and remember keys per run.

Postgres takes the fast path: rows are COPYed into a temporary staging table
with the dataset table's column types and merged with one ``INSERT … ON
CONFLICT`` per chunk that leaves rows whose values are unchanged untouched.
SQLite looks a batch's keys up and inserts or updates, with the same results.
Both run inside the chunk's transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation

from ingestion.models import Dataset
from ingestion.schema import SchemaSpec

from ..models import RejectedRow, Run
from ..record_tables import column_type, table_sql
from .bloom import DEFAULT_BITS, BloomFilter
from .copytext import copy_escapes
from .validate import RejectedValues, ValidRow
from .validrows import ValidRows

KEY_FIELD = "__key__"
_BATCH = 500  # keys per IN (...) query on the ORM path; SQLite allows 999 parameters


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


class SeenValues:
    """Values of the key and ``unique`` fields already accepted in this run.

    They live in a per-run table rather than in memory, so memory stays flat
    for any file size and a resumed run still knows what it loaded before.
    The table is committed with each chunk and dropped when the run ends.

    A run that starts with the table empty also keeps a Bloom filter per
    field of what it added (16 MiB for all fields together), and looks up only the values the filter cannot
    rule out: nearly every key of a file is new, and each look-up is an index
    probe (about a tenth of a 1M-row load). A resumed run, whose table
    already holds values this process never saw, looks every value up.
    """

    def __init__(self, run_id: int) -> None:
        self.table = f"dataflow_seen_{int(run_id)}"
        self._filters: dict[str, BloomFilter] | None = None
        self._filter_bits = DEFAULT_BITS

    def create(self, fields: int = 1) -> None:
        """Create the table (or find a resumed run's); ``fields`` share the filters' 16 MiB."""
        # A logged table on purpose: Postgres empties UNLOGGED tables after a crash,
        # and a run resumed then would no longer see the keys of its earlier chunks,
        # so a later duplicate would overwrite a row instead of being rejected.
        with connection.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(field TEXT NOT NULL, value TEXT NOT NULL, line INTEGER NOT NULL, PRIMARY KEY (field, value))"
            )
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {self.table})")
            (resumed,) = cur.fetchone()
        self._filters = None if resumed else {}
        # The fields share one filter's 16 MiB: 1M keys alone get ~134 bits
        # each, five fields of 5M values ~5 each.
        self._filter_bits = DEFAULT_BITS >> max(0, fields - 1).bit_length()

    def drop(self) -> None:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table}")

    def lookup(self, field: str, values: Sequence[str]) -> dict[str, int]:
        """First lines of the given values, for those already seen."""
        found: dict[str, int] = {}
        if self._filters is not None:
            # Values the filter rules out were never added: no need to ask.
            known = self._filters.get(field)
            values = known.maybe(values) if known is not None else []
        if not values:
            return found
        with connection.cursor() as cur:
            if _is_postgres():
                cur.execute(
                    f"SELECT value, line FROM {self.table} WHERE field = %s AND value = ANY(%s)",
                    [field, list(values)],
                )
                found.update(cur.fetchall())
            else:
                for i in range(0, len(values), _BATCH):
                    batch = list(values[i : i + _BATCH])
                    marks = ",".join(["%s"] * len(batch))
                    cur.execute(
                        f"SELECT value, line FROM {self.table} WHERE field = %s AND value IN ({marks})",
                        [field, *batch],
                    )
                    found.update(cur.fetchall())
        return found

    def add(self, entries: Sequence[tuple[str, str, int]]) -> None:
        by_field: dict[str, tuple[list[str], list[int]]] = {}
        for field, value, line in entries:
            values, lines = by_field.setdefault(field, ([], []))
            values.append(value)
            lines.append(line)
        for field, (values, lines) in by_field.items():
            self.add_column(field, values, lines)

    def add_column(self, field: str, values: Sequence[str], lines: Sequence[int]) -> None:
        """Remember ``values`` of one field, first seen on ``lines``."""
        if not values:
            return
        with connection.cursor() as cur:
            if _is_postgres():
                with cur.cursor.copy(f"COPY {self.table} (field, value, line) FROM STDIN") as copy:
                    # Field names are identifiers (or KEY_FIELD): only values need escaping.
                    prefix = f"{field}\t"
                    copy.write(
                        "".join([f"{prefix}{v}\t{n}\n" for v, n in zip(copy_escapes(values), lines, strict=True)])
                    )
            else:
                cur.executemany(
                    f"INSERT INTO {self.table} (field, value, line) VALUES (%s, %s, %s)",
                    [(field, v, n) for v, n in zip(values, lines, strict=True)],
                )
        if self._filters is not None:
            known = self._filters.get(field)
            if known is None:
                known = self._filters[field] = BloomFilter(bits=self._filter_bits)
            known.add(values)


def dataset_is_empty(dataset: Dataset) -> bool:
    """Whether a dataset holds no record yet (asked once, before a run loads anything)."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {table_sql(dataset.slug)})")
        return bool(cur.fetchone()[0])


def records_load(run: Run, spec: SchemaSpec, rows: Sequence[ValidRow], *, into_empty: bool = False) -> LoadCounts:
    """Upsert one chunk of rows (unique keys) into the dataset's table.

    ``spec`` is the run's schema, which the table has (``record_table_sync``).
    ``into_empty`` says the dataset held no record when the run started, so
    no row can be unchanged but for one another run loaded meanwhile: on
    Postgres the merge then skips looking the keys up first (the upsert
    still settles any conflict, with the same counts).
    """
    if not rows:
        return LoadCounts()
    if _is_postgres():
        return _load_postgres(run, spec, rows, into_empty=into_empty)
    return _load_sqlite(run, spec, rows)


# Below this many rows added by a run, stale statistics cost little.
ANALYZE_MIN_ROWS = 50_000


def _stage_name(table: str, spec: SchemaSpec) -> str:
    # A temporary table lives as long as its connection, which may outlive a
    # schema change or a deploy: its name follows its columns.
    columns = repr([(f.name, column_type(f)) for f in spec.fields])
    return "dataflow_stage_" + hashlib.blake2b(f"{table}:{columns}".encode(), digest_size=8).hexdigest()


def _load_postgres(run: Run, spec: SchemaSpec, rows: Sequence[ValidRow], *, into_empty: bool = False) -> LoadCounts:
    quote = connection.ops.quote_name
    table = table_sql(run.dataset.slug)
    stage = _stage_name(table, spec)
    names = [quote(f.name) for f in spec.fields]
    # Decimals compare as written: "1.50" replacing "1.5" is a change, as it was in the file.
    compare = [
        f"{{t}}.{n}::text" if column_type(f) == "numeric" else f"{{t}}.{n}"
        for f, n in zip(spec.fields, names, strict=True)
    ]

    def row(alias: str) -> str:
        return "ROW(" + ", ".join(c.format(t=alias) for c in compare) + ")"

    field_columns = ", ".join(names)
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (_key text NOT NULL, _source_line integer NOT NULL"
            + "".join(f", {n} {column_type(f)}" for f, n in zip(spec.fields, names, strict=True))
            + ") ON COMMIT DELETE ROWS"
        )
        # ON COMMIT clears it between chunks; TRUNCATE also covers savepoints
        # (a chunk nested in an outer transaction, as in a dry run).
        cur.execute(f"TRUNCATE {stage}")
        # Each row's line was rendered where it was validated (copytext.copy_line).
        with cur.cursor.copy(f"COPY {stage} (_key, _source_line, {field_columns}) FROM STDIN") as copy:
            copy.write(rows.copy_text() if isinstance(rows, ValidRows) else "".join([r.copy for r in rows]))
        assert run.schema is not None  # every run is created under its dataset's schema (dataset_schema_require)
        params: dict[str, Any] = {"run": run.pk, "version": run.schema.number, "now": timezone.now()}
        insert = (
            f"INSERT INTO {table} AS r (_key, {field_columns}, _first_run_id, _last_run_id, _source_line, "
            "_schema_version, _created_at, _updated_at) "
            "SELECT _key, "
            + field_columns
            + ", %(run)s, %(run)s, _source_line, %(version)s, %(now)s, %(now)s FROM {source}"
        )
        upsert = (
            insert
            + " ON CONFLICT (_key) DO UPDATE SET "
            + "".join(f"{n} = EXCLUDED.{n}, " for n in names)
            + "_last_run_id = EXCLUDED._last_run_id, _source_line = EXCLUDED._source_line, "
            "_schema_version = EXCLUDED._schema_version, _updated_at = EXCLUDED._updated_at "
            f"WHERE {row('r')} IS DISTINCT FROM {row('EXCLUDED')} RETURNING (xmax = 0) AS inserted"
        )
        counted = "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted"
        if into_empty and _insert_all(cur, insert.format(source=stage), params):
            # Nothing to look up and, as expected, nothing there: a plain insert
            # straight from the stage (a fifth cheaper than the upsert).
            inserted, updated = len(rows), 0
        elif into_empty:
            # Another run loaded some of these keys meanwhile: the upsert settles
            # them as in any other run. Still nothing to look up first: the stage
            # is read once in full, so its statistics do not matter either.
            cur.execute(f"WITH upserted AS ({upsert.format(source=stage)}) {counted}", params)
            inserted, updated = cur.fetchone()
        else:
            # A temporary table is never analysed by autovacuum: without a row
            # count the planner takes the stage for larger than it is and hashes
            # the dataset's every record instead of probing the key index.
            cur.execute(f"ANALYZE {stage} (_key)")
            # Rows whose values are unchanged are filtered out before the upsert,
            # so they are neither rewritten nor locked. A chunk is a few thousand
            # keys: one index probe each. The planner, which sees a narrow typed
            # table, otherwise hashes the dataset's whole table for every chunk
            # (measured: 414 ms a 10k chunk at 1M records, 36 ms by the index).
            cur.execute("SET LOCAL enable_hashjoin = off")
            cur.execute("SET LOCAL enable_mergejoin = off")
            cur.execute(
                f"""
                WITH changed AS (
                    SELECT s.* FROM {stage} s LEFT JOIN {table} t ON t._key = s._key
                    WHERE t._key IS NULL OR {row("t")} IS DISTINCT FROM {row("s")}
                ), upserted AS ({upsert.format(source="changed")})
                {counted}
                """,
                params,
            )
            inserted, updated = cur.fetchone()
            cur.execute("RESET enable_hashjoin")
            cur.execute("RESET enable_mergejoin")
        _analyze_when_grown(cur, table, run.rows_inserted + inserted)
    return LoadCounts(inserted, updated, len(rows) - inserted - updated)


def _insert_all(cur: Any, statement: str, params: dict[str, Any]) -> bool:
    """Insert every staged row as a new record; False (and nothing inserted) if a key exists already."""
    try:
        with transaction.atomic():  # a savepoint, so a conflict undoes only this statement
            cur.execute(statement, params)
    except IntegrityError as exc:
        if isinstance(exc.__cause__, UniqueViolation):
            return False
        raise
    return True


def rejected_store(run: Run, rejected: Sequence[RejectedValues]) -> None:
    """Keep a chunk's rejected rows (COPY on Postgres: the ORM spent ~70 µs a row)."""
    if not rejected:
        return
    assert run.schema_id is not None  # every run is created under its dataset's schema (dataset_schema_require)
    if not _is_postgres():
        RejectedRow.objects.bulk_create(
            (
                RejectedRow(run=run, line_number=r.line, raw=r.raw, errors=r.errors, schema_id=run.schema_id)
                for r in rejected
            ),
            batch_size=1000,
        )
        return
    now = timezone.now()
    columns = "run_id, line_number, raw, errors, schema_id, created_at"
    table = RejectedRow._meta.db_table
    with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for r in rejected:
            copy.write_row((run.pk, r.line, _json_text(r.raw), _json_text(r.errors), run.schema_id, now))


_json_text = json.JSONEncoder(ensure_ascii=False).encode


def _analyze_when_grown(cur: Any, table: str, added: int) -> None:
    """Refresh the table's statistics when it has doubled since they were taken.

    The merge above must look keys up one index probe at a time. With
    statistics taken when the table (or the dataset) was small, the planner
    instead hashes the dataset's every record for every chunk, and a big
    load slows down with the square of its size; autovacuum only catches up
    now and then. Doubling keeps this to a handful of ANALYZEs per run.
    """
    if added < ANALYZE_MIN_ROWS:
        return
    cur.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
    (known,) = cur.fetchone()
    # The table holds at least the rows this run added: past twice what the
    # statistics know of, it has at least doubled since they were taken.
    if added > 2 * max(known, 0):
        cur.execute(f"ANALYZE {table}")


def _load_sqlite(run: Run, spec: SchemaSpec, rows: Sequence[ValidRow]) -> LoadCounts:
    """The same upsert for SQLite: look the chunk's keys up, insert the new rows, update the changed."""
    quote = connection.ops.quote_name
    table = table_sql(run.dataset.slug)
    names = [quote(f.name) for f in spec.fields]
    fields = [f.name for f in spec.fields]
    counts = LoadCounts()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    assert run.schema is not None  # every run is created under its dataset's schema (dataset_schema_require)
    version = run.schema.number
    insert = (
        f"INSERT INTO {table} (_key, {', '.join(names)}, _first_run_id, _last_run_id, _source_line, "
        f"_schema_version, _created_at, _updated_at) VALUES ({', '.join(['%s'] * (len(names) + 7))})"
    )
    update = (
        f"UPDATE {table} SET {''.join(f'{n} = %s, ' for n in names)}_last_run_id = %s, _source_line = %s, "
        "_schema_version = %s, _updated_at = %s WHERE _key = %s"
    )
    loads = orjson.loads
    with connection.cursor() as cur:
        for i in range(0, len(rows), _BATCH):
            batch = rows[i : i + _BATCH]
            marks = ",".join(["%s"] * len(batch))
            cur.execute(f"SELECT _key, {', '.join(names)} FROM {table} WHERE _key IN ({marks})", [r.key for r in batch])
            stored = {found[0]: tuple(found[1:]) for found in cur.fetchall()}
            new: list[tuple[Any, ...]] = []
            changed: list[tuple[Any, ...]] = []
            for r in batch:
                data = loads(r.data_json)
                values = tuple(data[name] for name in fields)
                before = stored.get(r.key)
                if before is None:
                    new.append((r.key, *values, run.pk, run.pk, r.line, version, now, now))
                elif before != values:  # SQLite gives booleans back as 0/1, and True == 1
                    changed.append((*values, run.pk, r.line, version, now, r.key))
            if new:
                cur.executemany(insert, new)
            if changed:
                cur.executemany(update, changed)
            counts.inserted += len(new)
            counts.updated += len(changed)
            counts.unchanged += len(batch) - len(new) - len(changed)
    return counts
