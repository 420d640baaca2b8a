"""Load: upsert validated rows by natural key, and remember keys per run.

Postgres takes the fast path: rows are COPYed into a temporary staging table
and merged with one ``INSERT … ON CONFLICT`` per chunk that skips rows whose
content hash is unchanged. Other databases (SQLite) get a plain ORM path
with the same results. Both run inside the chunk's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation

from ..models import Record, RejectedRow, Run
from .bloom import DEFAULT_BITS, BloomFilter
from .validate import RejectedValues, ValidRow

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
        if not entries:
            return
        with connection.cursor() as cur:
            if _is_postgres():
                with cur.cursor.copy(f"COPY {self.table} (field, value, line) FROM STDIN") as copy:
                    for entry in entries:
                        copy.write_row(entry)
            else:
                cur.executemany(f"INSERT INTO {self.table} (field, value, line) VALUES (%s, %s, %s)", list(entries))
        if self._filters is not None:
            by_field: dict[str, list[str]] = {}
            for field, value, _ in entries:
                by_field.setdefault(field, []).append(value)
            for field, values in by_field.items():
                known = self._filters.get(field)
                if known is None:
                    known = self._filters[field] = BloomFilter(bits=self._filter_bits)
                known.add(values)


def dataset_is_empty(dataset_id: int) -> bool:
    """Whether a dataset holds no record yet (asked once, before a run loads anything)."""
    return not Record.objects.filter(dataset_id=dataset_id).exists()


def records_load(run: Run, rows: Sequence[ValidRow], *, into_empty: bool = False) -> LoadCounts:
    """Upsert one chunk of rows (unique keys) into the dataset's records.

    ``into_empty`` says the dataset held no record when the run started, so
    no row can be unchanged but for one another run loaded meanwhile: on
    Postgres the merge then skips looking the keys up first (the upsert
    still settles any conflict, with the same counts).
    """
    if not rows:
        return LoadCounts()
    if _is_postgres():
        return _load_postgres(run, rows, into_empty=into_empty)
    return _load_orm(run, rows)


# A new name whenever the stage's columns change: a temporary table lives as
# long as its connection, which may predate a deploy.
_STAGE = "dataflow_stage_v2"
# Below this many rows added by a run, stale statistics cost little.
ANALYZE_MIN_ROWS = 50_000


_UPSERT = """
    INSERT INTO {record} AS r (dataset_id, key, data, content_hash, first_run_id, last_run_id,
                               source_line, schema_id, created_at, updated_at)
    SELECT %(dataset)s, key, data::jsonb, content_hash, %(run)s, %(run)s, line, %(schema)s, %(now)s, %(now)s
    FROM {source}
    ON CONFLICT (dataset_id, key) DO UPDATE SET
        data = EXCLUDED.data,
        content_hash = EXCLUDED.content_hash,
        last_run_id = EXCLUDED.last_run_id,
        source_line = EXCLUDED.source_line,
        schema_id = EXCLUDED.schema_id,
        updated_at = EXCLUDED.updated_at
    WHERE r.content_hash <> EXCLUDED.content_hash
    RETURNING (xmax = 0) AS inserted
"""


def _load_postgres(run: Run, rows: Sequence[ValidRow], *, into_empty: bool = False) -> LoadCounts:
    record = Record._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            # data stays text here: it is parsed as JSON only for the rows that
            # are inserted or updated, not for the unchanged ones.
            "(key TEXT NOT NULL, data TEXT NOT NULL, content_hash TEXT NOT NULL, line INTEGER NOT NULL) "
            "ON COMMIT DELETE ROWS"
        )
        # ON COMMIT clears it between chunks; TRUNCATE also covers savepoints
        # (a chunk nested in an outer transaction, as in a dry run).
        cur.execute(f"TRUNCATE {_STAGE}")
        with cur.cursor.copy(f"COPY {_STAGE} (key, data, content_hash, line) FROM STDIN") as copy:
            for r in rows:
                copy.write_row((r.key, r.data_json, r.content_hash, r.line))
        params = {"dataset": run.dataset_id, "run": run.pk, "schema": run.schema_id, "now": timezone.now()}
        if into_empty and _insert_all(cur, record, params):
            # Nothing to look up and, as expected, nothing there: a plain insert
            # straight from the stage (a fifth cheaper than the upsert).
            inserted, updated = len(rows), 0
        elif into_empty:
            # Another run loaded some of these keys meanwhile: the upsert settles
            # them as in any other run. Still nothing to look up first: the stage
            # is read once in full, so its statistics do not matter either.
            upsert = _UPSERT.format(record=record, source=_STAGE)
            cur.execute(
                f"WITH upserted AS ({upsert}) "
                "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted",
                params,
            )
            inserted, updated = cur.fetchone()
        else:
            # A temporary table is never analysed by autovacuum: without a row
            # count the planner takes the stage for larger than it is and hashes
            # the dataset's every record instead of probing the key index.
            cur.execute(f"ANALYZE {_STAGE} (key)")
            # Rows whose hash is unchanged are filtered out before the upsert, so
            # they are neither rewritten nor locked.
            upsert = _UPSERT.format(record=record, source="changed")
            cur.execute(
                f"""
                WITH changed AS (
                    SELECT s.key, s.data, s.content_hash, s.line
                    FROM {_STAGE} s
                    LEFT JOIN {record} r ON r.dataset_id = %(dataset)s AND r.key = s.key
                    WHERE r.id IS NULL OR r.content_hash <> s.content_hash
                ), upserted AS ({upsert})
                SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
                """,
                params,
            )
            inserted, updated = cur.fetchone()
        _analyze_when_grown(cur, record, run.rows_inserted + inserted)
    return LoadCounts(inserted, updated, len(rows) - inserted - updated)


_INSERT = """
    INSERT INTO {record} (dataset_id, key, data, content_hash, first_run_id, last_run_id,
                          source_line, schema_id, created_at, updated_at)
    SELECT %(dataset)s, key, data::jsonb, content_hash, %(run)s, %(run)s, line, %(schema)s, %(now)s, %(now)s
    FROM {stage}
"""


def _insert_all(cur: Any, record: str, params: dict[str, Any]) -> bool:
    """Insert every staged row as a new record; False (and nothing inserted) if a key exists already."""
    try:
        with transaction.atomic():  # a savepoint, so a conflict undoes only this statement
            cur.execute(_INSERT.format(record=record, stage=_STAGE), params)
    except IntegrityError as exc:
        if isinstance(exc.__cause__, UniqueViolation):
            return False
        raise
    return True


def rejected_store(run: Run, rejected: Sequence[RejectedValues]) -> None:
    """Keep a chunk's rejected rows (COPY on Postgres: the ORM spent ~70 µs a row)."""
    if not rejected:
        return
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


def _load_orm(run: Run, rows: Sequence[ValidRow]) -> LoadCounts:
    counts = LoadCounts()
    now = timezone.now()
    for i in range(0, len(rows), _BATCH):
        batch = rows[i : i + _BATCH]
        existing = {
            key: (pk, content_hash)
            for pk, key, content_hash in Record.objects.filter(
                dataset_id=run.dataset_id, key__in=[r.key for r in batch]
            ).values_list("pk", "key", "content_hash")
        }
        new: list[Record] = []
        changed: list[Record] = []
        for r in batch:
            found = existing.get(r.key)
            if found is None:
                new.append(
                    Record(
                        dataset_id=run.dataset_id,
                        key=r.key,
                        data=r.data,
                        content_hash=r.content_hash,
                        first_run_id=run.pk,
                        last_run_id=run.pk,
                        source_line=r.line,
                        schema_id=run.schema_id,
                        created_at=now,
                        updated_at=now,
                    )
                )
            elif found[1] != r.content_hash:
                changed.append(
                    Record(
                        pk=found[0],
                        data=r.data,
                        content_hash=r.content_hash,
                        last_run_id=run.pk,
                        source_line=r.line,
                        schema_id=run.schema_id,
                        updated_at=now,
                    )
                )
        Record.objects.bulk_create(new)
        Record.objects.bulk_update(changed, ["data", "content_hash", "last_run", "source_line", "schema", "updated_at"])
        counts.inserted += len(new)
        counts.updated += len(changed)
        counts.unchanged += len(batch) - len(new) - len(changed)
    return counts
