"""Streaming exports of records and rejected rows (commands and API share them)."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from ingestion.csvwrite import csv_lines
from ingestion.fieldtypes import FIELD_TYPES, FieldTypeSpec, field_type
from ingestion.models import Dataset
from ingestion.selectors import schema_spec

from .models import RejectedRow, Run
from .record_queries import records_data

# Spreadsheets run cells starting with these as formulas (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_FORMATS = ("csv", "json")
_ITER_CHUNK = 2000


_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_safe(value: str) -> str:
    """Prefix a formula-looking text cell with ``'`` so spreadsheets show it as text.

    Plain numbers such as ``-5`` or ``+1.5`` cannot run as formulas and are
    left alone, so they survive a round trip.
    """
    if value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _cell(value: Any, text: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    value = str(value)
    # Typed numbers such as -5 stay numbers; any text cell is neutralised.
    return csv_safe(value) if text else value


def records_export(dataset: Dataset, fmt: str) -> Iterator[str]:
    """The dataset's records as CSV lines or a streamed JSON array, ordered by key."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    assert dataset.current_schema is not None  # every caller refuses a dataset without a schema first
    spec = schema_spec(dataset.current_schema)
    names = [f.name for f in spec.fields]
    text_fields = {f.name for f in spec.fields if field_type(f.type).is_text}
    rows = (data for _, data in records_data(dataset, spec, chunk=_ITER_CHUNK))
    if fmt == "csv":
        # The columns a file for this dataset uses (a field's source header when
        # it has one), so an export can be ingested again as it is.
        header = [[f.headers[0] for f in spec.fields]]
        body = ([_cell(data.get(n), n in text_fields) for n in names] for data in rows)
        yield from csv_lines(_chain(header, body))
        return
    yield from _json_array(rows)


def rejected_export(run: Run, fmt: str) -> Iterator[str]:
    """A run's rejected rows still in quarantine: line, errors and raw values, ready to fix and re-upload.

    The CSV keeps the file's own columns (plus ``_line`` and ``_errors``,
    which the pipeline ignores as unknown columns on re-upload); values that
    a row had beyond the header (``__extra__``) follow as unnamed columns, so
    such a row is still ragged until it is fixed. Raw values are not
    formula-neutralised: they must load again exactly as they were.
    Discarded rows are left out: they are no longer waiting to be fixed.
    """
    rows = RejectedRow.objects.filter(run=run, discarded_at=None).order_by("line_number")
    return _rejected_rows_export(rows, list(run.summary.get("headers") or []), fmt, with_run=False)


def rejected_export_of_dataset(dataset: Dataset, fmt: str) -> Iterator[str]:
    """Every row of ``dataset`` still in quarantine (not loaded since, not discarded), by run and line.

    The same shape as :func:`rejected_export` with a ``_run`` column first
    (ignored on re-upload like ``_line``); the columns are those of the
    runs' files, in the order they first appear.
    """
    rows = RejectedRow.objects.filter(run__dataset=dataset, discarded_at=None).order_by("run_id", "line_number")
    headers: list[str] = []
    run_headers = Run.objects.filter(pk__in=rows.values("run_id")).order_by("pk").values_list("summary", flat=True)
    for summary in run_headers:
        headers.extend(h for h in (summary or {}).get("headers") or [] if h not in headers)
    return _rejected_rows_export(rows, headers, fmt, with_run=True)


def _rejected_rows_export(rows: Any, headers: list[str], fmt: str, *, with_run: bool) -> Iterator[str]:
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    values = rows.values_list("run_id", "line_number", "errors", "raw")
    if fmt == "json":
        yield from _json_array(
            {**({"run": run_id} if with_run else {}), "line": line, "errors": errors, "raw": raw}
            for run_id, line, errors, raw in values.iterator(_ITER_CHUNK)
        )
        return
    for _, _, _, raw in values[:1000]:
        headers.extend(h for h in raw if h not in headers and h != "__extra__")

    def body() -> Iterator[list[str]]:
        for run_id, line, errors, raw in values.iterator(_ITER_CHUNK):
            message = "; ".join(f"{f}: {', '.join(m)}" for f, m in errors.items())
            # Raw values go out exactly as read, so the fixed file loads what was
            # meant; open it in a spreadsheet with care. Extra values follow.
            extra = [str(v) for v in raw.get("__extra__") or []]
            first = [str(run_id)] if with_run else []
            yield [*first, str(line), csv_safe(message), *(str(raw.get(h, "")) for h in headers), *extra]

    head = ["_run"] if with_run else []
    yield from csv_lines(_chain([[*head, "_line", "_errors", *headers]], body()))


def _chain(*parts: Iterable[list[str]]) -> Iterator[list[str]]:
    for part in parts:
        yield from part


def _json_array(items: Iterable[Any]) -> Iterator[str]:
    yield "["
    first = True
    for item in items:
        yield ("\n" if first else ",\n") + json.dumps(item, cls=DjangoJSONEncoder, ensure_ascii=False)
        first = False
    yield "\n]\n"


# --- Parquet ---------------------------------------------------------------------

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
    rows = records_data(dataset, spec, chunk=_ITER_CHUNK)
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
