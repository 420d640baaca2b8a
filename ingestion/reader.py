"""Reading raw files (CSV or NDJSON): decode them and yield rows with their line numbers.

The line number of a row is the 1-based physical line on which it starts,
the header being line 1, so quoted values with embedded newlines keep the
numbers people see in an editor.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from . import jsontext

# The csv module's own ceiling. Values longer than the pipeline's
# MAX_FIELD_SIZE are rejected by the validator; this only guards memory
# against a runaway quote swallowing the rest of a file.
CSV_FIELD_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(CSV_FIELD_LIMIT)


class CsvStructureError(ValueError):
    """The file cannot be parsed reliably past some point; the run must stop."""


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

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
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
        self.header: list[str] | None = None
        self.header_line = 0

    def read_header(self) -> list[str] | None:
        """The first non-blank row, or None for a file without one."""
        for row in self.rows():
            if row.values:
                self.header = row.values
                self.header_line = row.line
                return row.values
        return None

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
                if "field larger than field limit" in str(exc):
                    # Past a runaway value the parser would resume in the middle of
                    # it and read its tail as rows: stop instead of guessing.
                    raise CsvStructureError(
                        f"line {line}: a value is larger than {CSV_FIELD_LIMIT // (1024 * 1024)} MB (a quote that "
                        "is never closed?); the file cannot be read reliably past this point"
                    ) from None
                message = f"unreadable CSV: {exc}"
                if "unexpected end of data" in str(exc):
                    message = (
                        f"unreadable CSV: a quote opened on line {line} is never closed; "
                        f"lines {line}-{reader.line_num} were read as one value"
                    )
                yield RawRow(line, [], message)
                continue
            line = previous + 1
            previous = reader.line_num
            if values:
                yield RawRow(line, values)


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
