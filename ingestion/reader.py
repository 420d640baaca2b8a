"""Reading CSV files: decode a raw file and yield its rows with their line numbers.

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
