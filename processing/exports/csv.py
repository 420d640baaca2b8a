"""``csv``: RFC 4180 CSV in the dataset's own file columns, formula-looking text cells neutralised."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from ingestion.csvwrite import csv_lines
from ingestion.fieldtypes import field_type
from ingestion.models import Dataset
from ingestion.selectors import schema_spec

from ..record_queries import RecordSelection, records_data
from .base import ITER_CHUNK, ExportFormat, RejectedSelection, chain

# Spreadsheets run cells starting with these as formulas (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

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


def records_csv(dataset: Dataset, selection: RecordSelection | None = None) -> Iterator[str]:
    """The dataset's records as CSV lines, ordered by key.

    The columns are those a file for this dataset uses (a field's source
    header when it has one), so an export can be ingested again as it is.
    """
    assert dataset.current_schema is not None  # every caller refuses a dataset without a schema first
    spec = schema_spec(dataset.current_schema)
    names = [f.name for f in spec.fields]
    text_fields = {f.name for f in spec.fields if field_type(f.type).is_text}
    rows = (data for _, data in records_data(dataset, spec, chunk=ITER_CHUNK, selection=selection))
    header = [[f.headers[0] for f in spec.fields]]
    body = ([_cell(data.get(n), n in text_fields) for n in names] for data in rows)
    yield from csv_lines(chain(header, body))


def rejected_csv(selection: RejectedSelection) -> Iterator[str]:
    """Rejected rows, ready to fix and re-upload.

    The CSV keeps the file's own columns (plus ``_line`` and ``_errors``, and
    ``_run`` first for a dataset's rows, which the pipeline ignores as
    unknown columns on re-upload); values that a row had beyond the header
    (``__extra__``) follow as unnamed columns, so such a row is still ragged
    until it is fixed. Raw values are not formula-neutralised: they must load
    again exactly as they were.
    """
    rows = selection.rows.values_list("run_id", "line_number", "errors", "raw")
    headers = list(selection.headers)
    for _, _, _, raw in rows[:1000]:
        headers.extend(h for h in raw if h not in headers and h != "__extra__")

    def body() -> Iterator[list[str]]:
        for run_id, line, errors, raw in rows.iterator(ITER_CHUNK):
            message = "; ".join(f"{f}: {', '.join(m)}" for f, m in errors.items())
            # Raw values go out exactly as read, so the fixed file loads what was
            # meant; open it in a spreadsheet with care. Extra values follow.
            extra = [str(v) for v in raw.get("__extra__") or []]
            first = [str(run_id)] if selection.with_run else []
            yield [*first, str(line), csv_safe(message), *(str(raw.get(h, "")) for h in headers), *extra]

    head = ["_run"] if selection.with_run else []
    yield from csv_lines(chain([[*head, "_line", "_errors", *headers]], body()))


CSV = ExportFormat(
    name="csv",
    label="CSV",
    media_type="text/csv",
    charset="utf-8",
    extension="csv",
    description=(
        "CSV has one column per field, in schema order; text cells that a spreadsheet would run as a formula "
        "(starting with `=`, `+`, `-`, `@`, tab or CR) are prefixed with `'`."
    ),
    openapi_description="CSV with a header row.",
    records=records_csv,
    rejected=rejected_csv,
)
