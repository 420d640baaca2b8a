"""``parquet``: one Parquet file, a ``_key`` column and one typed column per field."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

from ingestion.fieldtypes import FIELD_TYPES, FieldTypeSpec, field_type
from ingestion.models import Dataset
from ingestion.selectors import schema_spec

from ..record_queries import records_data
from .base import ITER_CHUNK, ExportFormat

PARQUET_BATCH = 10_000


def _arrow_types(pa: Any) -> dict[str, Any]:
    """Parquet column type of each field type that has one; the others are exported as text."""
    return {
        name: getattr(pa, t.arrow_type[0])(*t.arrow_type[1:])
        for name, t in FIELD_TYPES.items()
        if t.arrow_type is not None
    }


def records_export_parquet(dataset: Dataset) -> Iterator[bytes]:
    """The dataset's records as one Parquet file, yielded in 1 MB pieces.

    Parquet writes its footer last, so the file is built in a temporary file
    (batch by batch; memory stays flat) and then streamed. Each column has
    its field's type, as the dataset's table does.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert dataset.current_schema is not None  # every caller refuses a dataset without a schema first
    spec = schema_spec(dataset.current_schema)
    arrow_types = _arrow_types(pa)
    # A column's type, or None for a column exported as text.
    columns: list[tuple[str, FieldTypeSpec | None]] = [
        (f.name, field_type(f.type) if f.type in arrow_types else None) for f in spec.fields
    ]
    schema = pa.schema(
        [pa.field("_key", pa.string(), nullable=False)]
        + [pa.field(name, arrow_types[t.name] if t is not None else pa.string()) for name, t in columns]
    )
    rows = records_data(dataset, spec, chunk=ITER_CHUNK)
    with tempfile.TemporaryFile() as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            batch: list[tuple[str, dict[str, Any]]] = []
            for item in rows:
                batch.append(item)
                if len(batch) >= PARQUET_BATCH:
                    writer.write_batch(_arrow_batch(batch, columns, schema))
                    batch = []
            if batch or not writer.is_open:
                writer.write_batch(_arrow_batch(batch, columns, schema))
        tmp.seek(0)
        while chunk := tmp.read(1 << 20):
            yield chunk


def _arrow_batch(
    batch: list[tuple[str, dict[str, Any]]], columns: list[tuple[str, FieldTypeSpec | None]], schema: Any
) -> Any:
    import pyarrow as pa

    arrays = [pa.array([key for key, _ in batch], type=pa.string())]
    for (name, kind), arrow_field in zip(columns, list(schema)[1:], strict=True):
        values = [data.get(name) for _, data in batch]
        if kind is None:
            values = [None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in values]
        else:
            to_arrow = kind.arrow_value
            values = [None if v is None else to_arrow(v) for v in values]
        arrays.append(pa.array(values, type=arrow_field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


PARQUET = ExportFormat(
    name="parquet",
    label="Parquet",
    media_type="application/vnd.apache.parquet",
    extension="parquet",
    description="Parquet has a `_key` column and one typed column per field (decimals as exact text).",
    openapi_description="Parquet.",
    records=records_export_parquet,
    binary=True,
    openapi={"type": "string", "format": "binary"},
)
