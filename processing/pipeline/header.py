"""Checks on a file before its rows are read: encoding decided, header size, unnamed columns, delimiter.

Each raises ``HeaderError`` with the message the run fails with; the driver
(``run.py``) calls them right after reading the header, so a run they stop
has loaded nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingestion.dialect import delimiter_matching_header, encoding_unsure_message
from ingestion.models import RawFile
from ingestion.reader import MAX_HEADER_NAME, columns_cap_message, reader_open
from ingestion.schema import SchemaSpec
from ingestion.storage import data_storage

from .validate import HeaderError, printable

# Unknown columns named in a run's summary; the rest are counted ("and N more").
UNKNOWN_COLUMNS_LISTED = 50
# A run's summary keeps the file's header names up to this many characters in all (with the total
# count), and cuts each unknown column name it lists to UNKNOWN_NAME_SHOWN: every GET of a run returns it.
SUMMARY_HEADER_CHARS = 20_000
UNKNOWN_NAME_SHOWN = 200


def encoding_check(raw_file: RawFile) -> None:
    """A file whose encoding could not be decided is not read at all."""
    if raw_file.encoding_confidence == "unsure" or not raw_file.encoding:
        raise HeaderError(encoding_unsure_message(raw_file.encoding_candidates or []))


def header_size_check(header: Sequence[str], max_columns: int) -> None:
    """Refuse a header with more columns than ``MAX_COLUMNS``, or a runaway column name.

    The reader already refuses a header over the cap while reading it (so a huge
    header is never held in memory); this also covers NDJSON keys.
    """
    if len(header) > max_columns:
        raise HeaderError(columns_cap_message(len(header), max_columns))
    for i, h in enumerate(header, start=1):
        if len(h) > MAX_HEADER_NAME:
            raise HeaderError(
                f"the header of column {i} is {len(h):,} characters long (at most {MAX_HEADER_NAME:,}): "
                "is a quote left open in the header row?"
            )


def unnamed_positions(header: Sequence[str]) -> list[int]:
    """1-based positions of the header cells that are blank."""
    return [i for i, h in enumerate(header, start=1) if not h.strip().lstrip("\ufeff")]


def unnamed_columns_check(raw_file: RawFile, positions: Sequence[int]) -> None:
    """Columns without a header must be empty in every row, or the run fails naming them.

    Their values could not be mapped to any field, so loading the file
    would drop them without a word; a value of spaces alone counts too. A
    column that is empty throughout (the trailing-comma pattern,
    ``id,name,``) is only reported. This reads the file once more, in one
    pass for all blank cells, only when its header has a blank cell, and
    stops at the first value found.
    """
    if not positions or raw_file.format != RawFile.Format.CSV:
        return
    indexes = [p - 1 for p in positions]
    with data_storage().open(raw_file.storage_name, "rb") as fh:
        reader = reader_open(fh, format=raw_file.format, encoding=raw_file.encoding, delimiter=raw_file.delimiter)
        reader.read_header()
        for row in reader.rows():
            values = row.values
            for i in indexes:
                # Any value counts, spaces included: nothing under a blank header is dropped unseen.
                if i < len(values) and values[i]:
                    raise HeaderError(
                        f"column {i + 1} has no header but holds values (the first on line {row.line}); "
                        "name it in the header row, or remove the column"
                    )


def unknown_columns_listed(unknown: Sequence[str], unnamed: Sequence[int]) -> list[str]:
    """The unknown columns a run reports: names first, then unnamed columns by position, bounded."""
    entries = [_shortened(printable(h)) for h in unknown[: UNKNOWN_COLUMNS_LISTED + 1]]
    entries += [f"column {p} has no header" for p in unnamed[: UNKNOWN_COLUMNS_LISTED + 1]]
    if len(unknown) + len(unnamed) > UNKNOWN_COLUMNS_LISTED:
        more = len(unknown) + len(unnamed) - UNKNOWN_COLUMNS_LISTED
        entries = [*entries[:UNKNOWN_COLUMNS_LISTED], f"and {more:,} more"]
    return entries


def _shortened(name: str) -> str:
    return name if len(name) <= UNKNOWN_NAME_SHOWN else name[: UNKNOWN_NAME_SHOWN - 1] + "…"


def summary_headers(headers: Sequence[str]) -> list[str]:
    """The header names a run's summary keeps: whole names, first to last, within ``SUMMARY_HEADER_CHARS``.

    They order the columns of the rejected rows' export and of re-processed
    rows; columns past the budget follow in the order of the rows' own raw
    values, so nothing is lost by leaving them out here.
    """
    kept: list[str] = []
    used = 0
    for h in headers:
        name = printable(h)
        used += len(name)
        if used > SUMMARY_HEADER_CHARS:
            break
        kept.append(name)
    return kept


def delimiter_hint(raw_file: RawFile, schema: SchemaSpec, header: Sequence[str]) -> str:
    """When the header fits the schema under another delimiter: say so (else an empty string)."""
    if raw_file.format != RawFile.Format.CSV or not raw_file.delimiter:
        return ""
    line = raw_file.delimiter.join(header)
    known = [h for f in schema.fields for h in f.headers]
    other = delimiter_matching_header(line, raw_file.delimiter, known)
    if other is None:
        return ""
    if raw_file.delimiter_source == "declared":
        return (
            f"this file looks {other!r}-separated; the dataset declares {raw_file.delimiter!r} "
            f'(upload it with the delimiter {other!r}, or set "detect_delimiter": true in the schema)'
        )
    return f"this file looks {other!r}-separated, but it was read with {raw_file.delimiter!r}"


def unnamed_columns(header: Sequence[str]) -> list[dict[str, object]]:
    """Preview entries for the header's blank cells ("column 3 has no header")."""
    return [
        {"field": None, "type": None, "required": False, "header": f"column {p} has no header", "status": "unknown"}
        for p in unnamed_positions(header)
    ]
