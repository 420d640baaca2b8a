"""The validator's shortcuts give exactly what the plain per-row path gives.

The reference is ``RowValidator`` with every field converted by its plain
``compile_field`` function, row by row; the data are bench/generate_csv.py's
messy rows (about 10 % invalid here, every defect it knows) read by the
pipeline's own reader.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from types import ModuleType

import pytest

from ingestion.reader import RawRow, reader_open
from ingestion.schema import SchemaSpec, schema_parse
from processing.pipeline.chunks import chunk_validate
from processing.pipeline.validate import RowValidator, columns_map, compile_field
from tests.conftest import SALES_SCHEMA

GENERATOR = Path(__file__).resolve().parents[2] / "bench" / "generate_csv.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_csv", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def messy() -> tuple[list[str], list[RawRow]]:
    out = io.StringIO()
    generator().generate(out, rows=6000, seed=5, invalid_rate=0.1)
    reader = reader_open(io.BytesIO(out.getvalue().encode()), format="csv", encoding="utf-8", delimiter=",")
    header = reader.read_header()
    assert header is not None
    return header, list(reader.rows())


def reference(schema: SchemaSpec, header: list[str]) -> RowValidator:
    validator = RowValidator(schema, columns_map(schema, header), 65536)
    validator.fields = [(f.name, validator.columns.positions[f.name], compile_field(f)) for f in schema.fields]
    return validator


def test_memoized_fields_validate_the_generators_rows_exactly_as_plain_ones(
    messy: tuple[list[str], list[RawRow]],
) -> None:
    header, rows = messy
    schema = schema_parse(SALES_SCHEMA)
    # Twice over, so that values (good and bad) come back from the memo.
    rows = rows + [RawRow(r.line + 100_000, r.values, r.error) for r in rows]

    fast = chunk_validate(RowValidator(schema, columns_map(schema, header), 65536), rows)
    plain = chunk_validate(reference(schema, header), rows)

    assert fast.valid == plain.valid
    assert fast.rejected == plain.rejected
    assert len(plain.rejected) > 500 and len(plain.valid) > 10_000  # both kinds were exercised
