"""The records table's physical setup: its indexes and, on PostgreSQL, its autovacuum settings."""

from __future__ import annotations

import pytest
from django.db import connection

from processing.models import Record

pytestmark = pytest.mark.django_db


def test_records_are_vacuumed_and_analysed_sooner_than_the_default() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("autovacuum is PostgreSQL's; SQLite has nothing to tune")
    with connection.cursor() as cur:
        cur.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [Record._meta.db_table])
        (options,) = cur.fetchone()

    settings = dict(option.split("=") for option in options)
    assert float(settings["autovacuum_vacuum_scale_factor"]) <= 0.05
    assert float(settings["autovacuum_analyze_scale_factor"]) <= 0.02


def test_no_index_repeats_another() -> None:
    with connection.cursor() as cur:
        constraints = connection.introspection.get_constraints(cur, Record._meta.db_table)

    indexed = [tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]]
    assert len(indexed) == len(set(indexed)), indexed
    # (dataset_id, key) leads with dataset_id: no index on dataset_id alone.
    assert ("dataset_id", "key") in indexed
    assert ("dataset_id",) not in indexed
