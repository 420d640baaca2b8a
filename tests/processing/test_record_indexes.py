"""Indexes for record filters on fields marked ``indexed``: made, used, dropped; the answers never change."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection

from ingestion.models import Dataset
from ingestion.schema import schema_parse
from ingestion.selectors import schema_spec
from ingestion.services.datasets import dataset_apply
from processing.record_indexes import (
    RecordIndexChanges,
    _existing,
    record_indexes_drop,
    record_indexes_sync,
    record_indexes_wanted,
)
from processing.record_queries import records_list
from processing.record_tables import table_sql
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, SALES_SCHEMA

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="reads PostgreSQL's query plan")


def sales_schema(*indexed: str) -> dict[str, Any]:
    schema = copy.deepcopy(SALES_SCHEMA)
    for f in schema["fields"]:
        if f["name"] in indexed:
            f["indexed"] = True
    return schema


def apply(*indexed: str) -> Dataset:
    return dataset_apply(spec=schema_parse(sales_schema(*indexed))).dataset


def load(dataset: Dataset, csv_file: Callable[..., Path], n: int = 40) -> None:
    countries = ["US", "FR", "DE", "JP"]
    rows = [f"S{i},2024-01-02T03:04:05Z,books,{i}.5,{i % 7},u{i}@example.com,{countries[i % 4]},,yes" for i in range(n)]
    path = csv_file("\n".join([SALES_HEADER, *rows]) + "\n")
    with path.open("rb") as fh:
        file_ingest(dataset=dataset, source=fh, original_name=path.name)


def field_indexes() -> set[str]:
    return _existing("sales")


def wanted(dataset: Dataset) -> set[str]:
    dataset.refresh_from_db()
    return set(record_indexes_wanted(dataset.slug, schema_spec(dataset.current_schema)))


def filtered_keys(dataset: Dataset, filters: list[tuple[str, str]]) -> list[str]:
    dataset.refresh_from_db()
    spec = schema_parse(dataset.current_schema.definition)
    return list(records_list(dataset, spec, filters=filters).values_list("key", flat=True))


def test_indexed_is_a_boolean_kept_in_the_schema_only_when_true() -> None:
    spec = schema_parse(sales_schema("country", "quantity"))
    assert [f.name for f in spec.fields if f.indexed] == ["quantity", "country"]
    assert next(f for f in spec.to_dict()["fields"] if f["name"] == "country")["indexed"] is True

    plain = copy.deepcopy(SALES_SCHEMA)
    plain["fields"][6]["indexed"] = False
    # Unmarked schemas keep their checksum: no new schema version for existing datasets.
    assert schema_parse(plain).fields_checksum() == schema_parse(copy.deepcopy(SALES_SCHEMA)).fields_checksum()

    plain["fields"][6]["indexed"] = "yes"
    with pytest.raises(ValidationError, match="'indexed' must be true or false"):
        schema_parse(plain)


@pytest.mark.parametrize(
    "filters",
    [
        [("country", "FR")],
        [("country__in", "FR,JP")],
        [("quantity__gte", "3"), ("quantity__lte", "5")],
        [("quantity", "6"), ("country", "DE")],
        [("country__contains", "U")],
    ],
)
def test_filters_give_the_same_records_with_and_without_the_indexes(
    csv_file: Callable[..., Path], filters: list[tuple[str, str]]
) -> None:
    dataset = apply()
    load(dataset, csv_file)
    before = filtered_keys(dataset, filters)

    dataset = apply("country", "quantity")
    record_indexes_sync(dataset)

    assert before and filtered_keys(dataset, filters) == before


def test_applying_the_schema_makes_the_indexes_and_a_run_keeps_them(csv_file: Callable[..., Path]) -> None:
    dataset = apply("country")
    assert field_indexes() == wanted(dataset)
    assert len(field_indexes()) == 1

    record_indexes_drop("sales")  # lost, e.g. dropped by hand
    load(dataset, csv_file)

    assert field_indexes() == wanted(dataset)


@postgres_only
def test_the_filter_uses_the_index(csv_file: Callable[..., Path]) -> None:
    dataset = apply("country")
    load(dataset, csv_file, n=200)
    queryset = records_list(dataset, schema_parse(sales_schema("country")), filters=[("country", "FR")])[:100]

    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {table_sql('sales')}")
        # A small table is cheaper to scan; the point is that the index can serve the filter.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        sql, params = queryset.query.sql_with_params()
        cur.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cur.fetchall())

    (name,) = wanted(dataset)
    assert name in plan, plan


def test_unmarking_a_field_drops_its_index(csv_file: Callable[..., Path]) -> None:
    dataset = apply("country", "quantity")
    load(dataset, csv_file)
    assert len(field_indexes()) == 2

    apply("quantity")  # a new schema version: its table and indexes follow

    assert field_indexes() == wanted(dataset) and len(field_indexes()) == 1
    assert record_indexes_sync(dataset) == RecordIndexChanges()


def test_the_command_brings_the_indexes_in_line(csv_file: Callable[..., Path]) -> None:
    dataset = apply("country")
    load(dataset, csv_file)
    record_indexes_drop("sales")
    out = io.StringIO()

    call_command("records_index", "--dataset", "sales", stdout=out)

    assert out.getvalue() == "sales: 1 index(es) created, 0 dropped\n"
    assert field_indexes() == wanted(dataset)
    with pytest.raises(CommandError, match="No dataset 'nope'"):
        call_command("records_index", "--dataset", "nope")
