"""The export-format registry: every format records and rejected rows can be exported in, declared once.

``EXPORT_FORMATS`` maps a format's name to its ``ExportFormat``, in the
order the API and the commands list them (the first is the default). The
doors ask ``export_format(name)``; a new format is one module here plus its
tests (docs/development.md, "Adding an export format").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ingestion.models import Dataset

from ..models import RejectedRow, Run
from ..record_queries import RecordSelection
from .base import ExportFormat, RejectedSelection
from .csv import CSV, FORMULA_PREFIXES, csv_safe
from .json import JSON
from .parquet import PARQUET, records_export_parquet

EXPORT_FORMATS: dict[str, ExportFormat] = {f.name: f for f in (CSV, JSON, PARQUET)}
DEFAULT_FORMAT = CSV.name


def export_format(name: str) -> ExportFormat:
    """The registered format called ``name`` (``KeyError`` if there is none)."""
    return EXPORT_FORMATS[name]


def rejected_formats() -> list[str]:
    """The formats a run's rejected rows can be exported in."""
    return [name for name, f in EXPORT_FORMATS.items() if f.rejected is not None]


def formats_text(names: list[str]) -> str:
    """``csv, json or parquet``: the formats as an error message lists them."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def records_export(dataset: Dataset, fmt: str, selection: RecordSelection | None = None) -> Iterator[Any]:
    """The dataset's records (those of ``selection``) in format ``fmt``: ``str`` chunks, or ``bytes`` if binary."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[fmt].records(dataset, selection)


def rejected_export(run: Run, fmt: str) -> Iterator[str]:
    """A run's rejected rows still in quarantine (line, errors, raw values) in format ``fmt``, to fix and re-upload.

    Discarded rows are left out: they are no longer waiting to be fixed.
    """
    rows = RejectedRow.objects.filter(run=run, discarded_at=None).order_by("line_number")
    return _rejected_writer(fmt)(RejectedSelection(rows=rows, headers=list(run.summary.get("headers") or [])))


def rejected_export_of_dataset(dataset: Dataset, fmt: str) -> Iterator[str]:
    """Every row of ``dataset`` still in quarantine (not loaded since, not discarded), by run and line.

    The same shape as :func:`rejected_export` with each row's run; the
    columns are those of the runs' files, in the order they first appear.
    """
    rows = RejectedRow.objects.filter(run__dataset=dataset, discarded_at=None).order_by("run_id", "line_number")
    headers: list[str] = []
    summaries = Run.objects.filter(pk__in=rows.values("run_id")).order_by("pk").values_list("summary", flat=True)
    for summary in summaries:
        headers.extend(h for h in (summary or {}).get("headers") or [] if h not in headers)
    return _rejected_writer(fmt)(RejectedSelection(rows=rows, headers=headers, with_run=True))


def _rejected_writer(fmt: str) -> Any:
    writer = EXPORT_FORMATS[fmt].rejected if fmt in EXPORT_FORMATS else None
    if writer is None:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(rejected_formats())}")
    return writer


__all__ = [
    "DEFAULT_FORMAT",
    "EXPORT_FORMATS",
    "FORMULA_PREFIXES",
    "ExportFormat",
    "csv_safe",
    "export_format",
    "formats_text",
    "records_export",
    "records_export_parquet",
    "rejected_export",
    "rejected_export_of_dataset",
    "rejected_formats",
]
