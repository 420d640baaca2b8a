"""What a file would do if it were loaded now: counts, rejected rows, the column mapping. Nothing is kept."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from ingestion.models import Dataset, RawFile, Source
from ingestion.reader import HeaderTooLarge, reader_open
from ingestion.schema import SchemaSpec
from ingestion.selectors import schema_spec
from ingestion.services.raw_files import ByteSource, raw_file_discard, raw_file_receive
from ingestion.storage import data_storage

from .. import lifecycle
from ..models import RejectedRow, RunStatus
from ..pipeline import pipeline_execute
from ..pipeline.header import unnamed_columns
from ..pipeline.validate import columns_match, printable
from .runs import earlier_load, run_create
from .sources import pull_summary, source_fetch

logger = logging.getLogger(__name__)


class _Rollback(Exception):
    pass


@dataclass
class Preview:
    """What ingesting a file would do, computed without keeping anything."""

    status: str
    error: str
    encoding: str
    delimiter: str
    rows_read: int
    valid: int
    rejected: int
    inserted: int
    updated: int
    unchanged: int
    summary: dict[str, Any]
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    noop_of: int | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    # Where the encoding and delimiter came from (RawFile.dialect()): source, confidence, display text.
    dialect: dict[str, Any] = field(default_factory=dict)


def file_preview(
    *,
    dataset: Dataset,
    source: ByteSource,
    original_name: str = "",
    encoding: str | None = None,
    delimiter: str | None = None,
    force: bool = False,
    chunk_size: int | None = None,
    max_rejected: int = 20,
) -> Preview:
    """A dry run of a file that is not kept: receive it, preview it, delete it."""
    raw_file = raw_file_receive(
        dataset=dataset, source=source, original_name=original_name, encoding=encoding, delimiter=delimiter
    )
    try:
        return raw_file_preview(raw_file=raw_file, force=force, chunk_size=chunk_size, max_rejected=max_rejected)
    finally:
        raw_file_discard(raw_file=raw_file)


def raw_file_preview(
    *,
    raw_file: RawFile,
    force: bool = False,
    chunk_size: int | None = None,
    max_rejected: int = 20,
) -> Preview:
    """A dry run of a stored file: the full pipeline inside a transaction that is rolled back.

    Counts are exact (duplicates across chunks included) and nothing is kept.
    """
    preview: Preview | None = None
    dataset = raw_file.dataset
    try:
        with transaction.atomic():
            run = run_create(dataset=dataset, raw_file=raw_file, force=force, chunk_size=chunk_size)
            earlier = None if force else earlier_load(run)
            if earlier is None:
                run = pipeline_execute(run, end=lifecycle.run_finish, dry_run=True)
            else:
                run.summary = {"note": f"this file was already loaded by run {earlier.pk}; nothing to do"}
            assert run.schema is not None  # run_create refuses a dataset without a schema
            rejected = [
                {"line": r.line_number, "errors": r.errors, "raw": r.raw}
                for r in RejectedRow.objects.filter(run=run).order_by("line_number")[:max_rejected]
            ]
            preview = Preview(
                status=run.status if earlier is None else RunStatus.SUCCEEDED,
                error=run.error,
                encoding=raw_file.encoding,
                delimiter=raw_file.delimiter,
                rows_read=run.rows_read,
                valid=run.rows_valid,
                rejected=run.rows_rejected,
                inserted=run.rows_inserted,
                updated=run.rows_updated,
                unchanged=run.rows_unchanged,
                summary=run.summary,
                rejected_rows=rejected,
                noop_of=earlier.pk if earlier else None,
                columns=raw_file_columns(raw_file=raw_file, schema=schema_spec(run.schema)),
                dialect=raw_file.dialect(),
            )
            raise _Rollback
    except _Rollback:
        pass
    assert preview is not None
    return preview


def raw_file_columns(*, raw_file: RawFile, schema: SchemaSpec) -> list[dict[str, Any]]:
    """How the file's header maps to the schema: one entry per field, then unknown columns.

    Empty when the file cannot be read (its encoding was not decided, or its header is over the caps).
    """
    if raw_file.encoding_confidence == "unsure" or not raw_file.encoding:
        return []
    with data_storage().open(raw_file.storage_name, "rb") as fh:
        reader = reader_open(fh, format=raw_file.format, encoding=raw_file.encoding, delimiter=raw_file.delimiter)
        try:
            header = reader.read_header() or []
        except HeaderTooLarge:
            return []
    match = columns_match(schema, header)
    columns: list[dict[str, Any]] = []
    for f in schema.fields:
        index = match.positions[f.name]
        columns.append(
            {
                "field": f.name,
                "type": f.type,
                "required": f.required,
                "header": printable(header[index]) if index is not None else None,
                "status": "mapped" if index is not None else ("missing" if f.required else "absent"),
            }
        )
    columns.extend(
        {"field": None, "type": None, "required": False, "header": printable(h), "status": "unknown"}
        for h in match.unknown
    )
    columns.extend(unnamed_columns(header))
    return columns


@dataclass
class PullPreview:
    """What pulling a source now would do; nothing is kept."""

    pull: dict[str, Any]
    preview: Preview


def source_preview(*, source: Source, max_rejected: int = 20) -> PullPreview:
    """A dry run of a pull: fetch every page, run the pipeline in a rolled-back transaction, keep nothing.

    The watermark does not move. Raises ``FetchError`` when the pull fails.
    """
    fetched = source_fetch(source=source)
    try:
        preview = raw_file_preview(raw_file=fetched.raw_file, max_rejected=max_rejected)
    finally:
        raw_file_discard(raw_file=fetched.raw_file)
    return PullPreview(pull=pull_summary(fetched.result), preview=preview)
