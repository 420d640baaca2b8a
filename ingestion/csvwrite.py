"""How DataFlow writes CSV: one dialect for every CSV file it produces.

Exports of records and rejected rows, processed files and the small files
built to reload fixed rows all write through this module, so they read back
identically with Python's ``csv`` module, pandas (``read_csv``) and
PostgreSQL (``COPY … (FORMAT csv, HEADER)``).

The dialect is RFC 4180's: comma, ``"`` doubled inside quoted values,
minimal quoting and CRLF at the end of each row. The line terminator is
what makes values with line breaks safe: CPython's writer quotes a value
holding the delimiter, the quote character or *any character of the line
terminator* (``Modules/_csv.c``, ``join_append_data``), but nothing else.
With ``"\\n"`` as terminator a value holding a lone CR stays unquoted, and
every reader above then ends the row there. With ``"\\r\\n"`` both CR and LF
force quotes, and all three readers accept CRLF row ends and CR/LF inside
quoted values. Values are otherwise written as they are: leading and
trailing spaces, tabs and other control characters are kept by all three
readers without quotes.

An empty cell is how a missing value (null) is written; CSV as written here
does not tell an empty text from null (the pipeline reads both as null).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


class DataflowCsv(csv.Dialect):
    """The dialect of every CSV file DataFlow writes (see the module docstring)."""

    delimiter = ","
    quotechar = '"'
    doublequote = True
    escapechar = None
    skipinitialspace = False
    lineterminator = "\r\n"
    quoting = csv.QUOTE_MINIMAL


def csv_writer(fh: _Writable) -> Any:
    """A ``csv.writer`` in DataFlow's dialect, writing to ``fh`` (opened with ``newline=""``)."""
    return csv.writer(fh, dialect=DataflowCsv)


class _Echo:
    """A file whose ``write`` hands the text back, so ``writerow`` returns the row's text."""

    def write(self, text: str) -> str:
        return text


def csv_row_renderer() -> Callable[[Iterable[Any]], str]:
    """A function turning one row into its CSV text (terminator included), without a buffer."""
    return csv_writer(_Echo()).writerow


# A line holding only \. ends the data of a PostgreSQL COPY even in CSV
# format, unless it is quoted (PostgreSQL quotes it on output for this reason).
_COPY_END = "\\.\r\n"
_COPY_END_QUOTED = '"\\."\r\n'


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Rows as CSV text, one string per row, for streaming to people and programs.

    A row that is the single value ``\\.`` is written quoted, so that loading
    the file with PostgreSQL's ``COPY`` does not stop there.
    """
    render = csv_row_renderer()
    for row in rows:
        line = render(row)
        yield _COPY_END_QUOTED if line == _COPY_END else line
