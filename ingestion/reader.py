"""Reading raw files (CSV or NDJSON): decode them and yield rows with their line numbers.

The line number of a row is the 1-based physical line on which it starts,
the header being line 1, so quoted values with embedded newlines keep the
numbers people see in an editor.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from typing import IO, Any

from django.conf import settings

from . import jsontext

# The csv module's own ceiling. Values longer than the pipeline's
# MAX_FIELD_SIZE are rejected by the validator; this only guards memory
# against a runaway quote swallowing the rest of a file.
CSV_FIELD_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(CSV_FIELD_LIMIT)


# A header name longer than this is a stray quote or a data row, not a column name.
MAX_HEADER_NAME = 1000


class CsvStructureError(ValueError):
    """The file cannot be parsed reliably past some point; the run must stop."""


class HeaderTooLarge(CsvStructureError):
    """The header row has more columns, or more characters, than a file may have."""


def columns_cap_message(columns: int, max_columns: int, *, exact: bool = True) -> str:
    """Why a header with too many columns is refused, naming the setting that allows more."""
    count = f"{columns:,}" if exact else f"more than {columns:,}"
    return f"the header has {count} columns; at most {max_columns:,} are allowed (PIPELINE_MAX_COLUMNS)"


# A chunk of rows as columns: line numbers, values, reading errors ("" for none).
RowColumns = tuple[list[int], list[list[str]], list[str]]


@dataclass(slots=True)
class RawRow:
    line: int
    values: list[str]
    error: str = ""


class CountingReader(io.RawIOBase):
    """Counts the bytes pulled from a binary stream, for progress reports."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class CsvReader:
    """Streams rows out of a binary file; never holds more than one row."""

    def __init__(self, source: IO[bytes], *, encoding: str, delimiter: str) -> None:
        self.bytes = CountingReader(source)
        # surrogateescape keeps undecodable bytes visible so the validator can
        # reject exactly the rows that hold them instead of mangling text.
        codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        self.text = io.TextIOWrapper(
            io.BufferedReader(self.bytes, 1 << 20), encoding=codec, errors="surrogateescape", newline=""
        )
        # strict: malformed quoting (and a quote left open at the end of the
        # file) is an error we report, not something the parser guesses about.
        self.reader = csv.reader(self.text, delimiter=delimiter, strict=True)
        self.delimiter = delimiter
        self.header: list[str] | None = None
        self.header_line = 0

    def read_header(self, *, max_columns: int | None = None) -> list[str] | None:
        """The first non-blank row, or None for a file without one.

        With ``max_columns`` (by default the ``MAX_COLUMNS`` setting), the
        header is measured as it streams in, before it is split into names:
        more columns than that, or more characters than such a header can
        hold (``max_columns`` names of ``MAX_HEADER_NAME`` characters), raise
        ``HeaderTooLarge`` having held at most one such header in memory.
        """
        if max_columns is None:
            max_columns = settings.DATAFLOW["MAX_COLUMNS"]
        lines = self._header_lines(max_columns, max_columns * (MAX_HEADER_NAME + 3) + 2)
        # The parser reads the measured lines again, then the rest of the file.
        self.reader = csv.reader(chain(lines, self.text), delimiter=self.delimiter, strict=True)
        for row in self.rows():
            if row.values:
                self.header = row.values
                self.header_line = row.line
                return row.values
        return None

    def _header_lines(self, max_columns: int, max_chars: int) -> list[str]:
        """The physical lines up to the end of the header record (blank lines before it included).

        Reads the header in pieces of at most 64K characters, counting the
        delimiters outside quoted values as they go by; raises
        ``HeaderTooLarge`` past ``max_columns`` columns or ``max_chars``
        characters. Once over the column cap the pieces are no longer kept,
        only counted (up to ``max_chars``), so the error can give the count.
        """
        lines: list[str] = []
        special = re.compile(f'["\r\n{re.escape(self.delimiter)}]')
        columns, chars = 1, 0
        in_quotes = False
        fresh = True  # no character of the current field seen yet
        quote_at_end = False  # a quote ended the last piece inside a quoted value: closing, or doubled?
        ended = False
        while not ended:
            piece = self.text.readline(1 << 16)
            if not piece:
                break  # the end of the file
            if not chars and piece in ("\n", "\r", "\r\n"):
                lines.append(piece)  # a blank line before the header
                continue
            chars += len(piece)
            last = 0
            if quote_at_end:
                quote_at_end = False
                if piece.startswith('"'):
                    last = 1  # a doubled quote, cut in two
                else:
                    in_quotes, fresh = False, False
            for m in special.finditer(piece, last):
                p, ch = m.start(), m.group()
                if p < last:
                    continue  # the second quote of a doubled one
                if p > last:
                    fresh = False
                last = p + 1
                if in_quotes:
                    if ch == '"':
                        if p + 1 == len(piece):
                            quote_at_end = True
                        elif piece[p + 1] == '"':
                            last = p + 2
                        else:
                            in_quotes, fresh = False, False
                elif ch == '"':
                    in_quotes, fresh = fresh, False
                elif ch == self.delimiter:
                    columns += 1
                    fresh = True
                else:
                    ended = True
                    break
            if len(piece) > last and not ended:
                fresh = False
            if columns <= max_columns:
                lines.append(piece)
            if chars > max_chars:
                break
        if columns > max_columns:
            raise HeaderTooLarge(columns_cap_message(columns if ended else max_columns, max_columns, exact=ended))
        if chars > max_chars:
            raise HeaderTooLarge(
                f"the header row is longer than {max_chars:,} characters (at most {max_columns:,} names of at most "
                f"{MAX_HEADER_NAME:,} characters): is a quote left open in the header row?"
            )
        return _physical_lines(lines)

    def rows(self) -> Iterator[RawRow]:
        """Rows after the header; blank lines are skipped, never counted as rows."""
        reader = self.reader
        previous = reader.line_num
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = previous + 1
                previous = reader.line_num
                yield RawRow(line, [], _csv_error_message(exc, line, reader.line_num))
                continue
            line = previous + 1
            previous = reader.line_num
            if values:
                yield RawRow(line, values)

    def row_chunks(self, size: int) -> Iterator[RowColumns]:
        """``rows()`` in chunks of ``size`` rows, as columns, without an object per row.

        Each chunk is ``(lines, values, errors)``: every row's line number,
        values and reading error (``""`` for none), exactly as ``rows()``
        gives them; an unreadable row takes its place in a chunk as there.
        """
        reader = self.reader
        previous = reader.line_num
        while True:
            lines: list[int] = []
            values: list[list[str]] = []
            failed: list[tuple[int, str]] = []
            pulled = True
            while pulled and len(lines) < size:
                pulled = False
                try:
                    for row in islice(reader, size - len(lines)):
                        pulled = True
                        line = previous + 1
                        previous = reader.line_num
                        if row:
                            lines.append(line)
                            values.append(row)
                except csv.Error as exc:
                    pulled = True
                    line = previous + 1
                    previous = reader.line_num
                    failed.append((len(lines), _csv_error_message(exc, line, reader.line_num)))
                    lines.append(line)
                    values.append([])
            if not lines:
                return
            errors = [""] * len(lines)
            for position, message in failed:
                errors[position] = message
            yield lines, values, errors


def _csv_error_message(exc: csv.Error, line: int, line_num: int) -> str:
    """What a row the parser failed on is rejected with (raises for an error past which nothing is reliable)."""
    if "field larger than field limit" in str(exc):
        # Past a runaway value the parser would resume in the middle of
        # it and read its tail as rows: stop instead of guessing.
        raise CsvStructureError(
            f"line {line}: a value is larger than {CSV_FIELD_LIMIT // (1024 * 1024)} MB (a quote that "
            "is never closed?); the file cannot be read reliably past this point"
        ) from None
    if "unexpected end of data" in str(exc):
        return (
            f"unreadable CSV: a quote opened on line {line} is never closed; "
            f"lines {line}-{line_num} were read as one value"
        )
    return f"unreadable CSV: {exc}"


def _physical_lines(pieces: list[str]) -> list[str]:
    """Pieces of lines joined into whole lines: the parser ends a record at the end of each string."""
    lines: list[str] = []
    current: list[str] = []
    for piece in pieces:
        current.append(piece)
        if piece.endswith(("\n", "\r")):
            lines.append("".join(current))
            current = []
    if current:
        lines.append("".join(current))
    return lines


def json_text(value: object) -> str:
    """A JSON value as the text the validator reads: null is empty, numbers keep their spelling,
    nested values stay JSON."""
    if value is None:
        return ""
    if isinstance(value, str):  # strings, and numbers kept as their text (jsontext.JsonNumber)
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return jsontext.dumps(value)


def _excerpt(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _key_norm(key: str) -> str:
    # As headers are matched to fields (processing.pipeline.validate): case and spaces aside.
    return key.strip().lstrip("\ufeff").casefold()


class NdjsonReader:
    """Streams rows out of an NDJSON file (one JSON object per line).

    The header is every key seen in the file, in order of first appearance
    (keys differing only in case or surrounding spaces count as one column,
    spelled as first seen), found in a first streaming pass; each row gives
    its object's values in header order, a missing key reading as empty
    (null). A line that is not a JSON object, or an object with two keys for
    one column, becomes a row with an error, so it is rejected with its
    reason and line number, never dropped. Numbers keep their JSON text.
    Line numbers are physical lines, the first record being line 1.
    """

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.bytes = CountingReader(source)
        self.header: list[str] | None = None
        self.header_line = 0

    def read_header(self) -> list[str]:
        columns: dict[str, str] = {}
        for raw in self.source:
            line = raw.strip().removeprefix(b"\xef\xbb\xbf")
            if not line.startswith(b"{"):
                continue
            try:
                obj = jsontext.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                for key in obj:
                    columns.setdefault(_key_norm(key), key)
        self.source.seek(0)
        self.header = list(columns.values())
        return self.header

    def rows(self) -> Iterator[RawRow]:
        header = self.header if self.header is not None else self.read_header()
        by_norm = {_key_norm(h): i for i, h in enumerate(header)}
        # Records repeat the same few keys: normalise each spelling once, not once per row.
        position: dict[str, int | None] = {}
        width = len(header)
        text = io.TextIOWrapper(
            io.BufferedReader(self.bytes, 1 << 20), encoding="utf-8-sig", errors="surrogateescape", newline="\n"
        )
        for number, raw in enumerate(text, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                obj = jsontext.loads(line)
            except ValueError as exc:
                yield RawRow(number, [], f"not valid JSON ({exc.args[0] if exc.args else exc}): {_excerpt(line)}")
                continue
            if not isinstance(obj, dict):
                kind = {list: "an array", bool: "a boolean", jsontext.JsonNumber: "a number"}.get(type(obj), "a string")
                if obj is None:
                    kind = "null"
                yield RawRow(number, [], f"a record must be a JSON object, this line holds {kind}: {_excerpt(line)}")
                continue
            values = [""] * width
            seen: dict[int, str] = {}
            clash = ""
            for key, value in obj.items():
                if key not in position:
                    position[key] = by_norm.get(_key_norm(key))
                index = position[key]
                if index is None:
                    continue  # only when the header came from elsewhere (an empty file's schema columns)
                if index in seen:
                    clash = f"keys {seen[index]!r} and {key!r} name the same column"
                    break
                seen[index] = key
                values[index] = json_text(value)
            if clash:
                yield RawRow(number, [], f"{clash}: {_excerpt(line)}")
                continue
            yield RawRow(number, values)


def reader_open(source: IO[bytes], *, format: str, encoding: str, delimiter: str) -> CsvReader | NdjsonReader:
    """The reader for a raw file's format ("csv" or "ndjson")."""
    if format == "ndjson":
        return NdjsonReader(source)
    return CsvReader(source, encoding=encoding, delimiter=delimiter)
