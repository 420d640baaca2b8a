"""``json``: one streamed JSON array of the stored values."""

from __future__ import annotations

from collections.abc import Iterator

from ingestion.models import Dataset
from ingestion.selectors import schema_spec

from ..record_queries import RecordSelection, records_data
from .base import ITER_CHUNK, ExportFormat, RejectedSelection, json_array


def records_json(dataset: Dataset, selection: RecordSelection | None = None) -> Iterator[str]:
    """The dataset's records as a JSON array of objects, ordered by key."""
    assert dataset.current_schema is not None  # every caller refuses a dataset without a schema first
    spec = schema_spec(dataset.current_schema)
    yield from json_array(data for _, data in records_data(dataset, spec, chunk=ITER_CHUNK, selection=selection))


def rejected_json(selection: RejectedSelection) -> Iterator[str]:
    """Rejected rows as a JSON array of ``{line, errors, raw}`` (``run`` first for a dataset's rows)."""
    rows = selection.rows.values_list("run_id", "line_number", "errors", "raw")
    yield from json_array(
        {**({"run": run_id} if selection.with_run else {}), "line": line, "errors": errors, "raw": raw}
        for run_id, line, errors, raw in rows.iterator(ITER_CHUNK)
    )


JSON = ExportFormat(
    name="json",
    label="JSON",
    media_type="application/json",
    extension="json",
    description="JSON is an array of the records' values.",
    openapi_description="A JSON array of objects.",
    records=records_json,
    rejected=rejected_json,
    openapi={"type": "array", "items": {"type": "object", "additionalProperties": True}},
)
