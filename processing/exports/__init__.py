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

from ..models import Run
from .base import ExportFormat
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


def records_export(dataset: Dataset, fmt: str) -> Iterator[Any]:
    """The dataset's records in format ``fmt``: ``str`` chunks, or ``bytes`` for a binary format."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[fmt].records(dataset)


def rejected_export(run: Run, fmt: str) -> Iterator[str]:
    """A run's rejected rows (line, errors and raw values) in format ``fmt``, ready to fix and re-upload."""
    writer = EXPORT_FORMATS[fmt].rejected if fmt in EXPORT_FORMATS else None
    if writer is None:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(rejected_formats())}")
    return writer(run)


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
    "rejected_formats",
]
