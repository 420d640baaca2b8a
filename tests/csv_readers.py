"""Read a CSV file we wrote back with the three readers our users use: csv, pandas and Postgres COPY.

Each reader returns the header and the rows as lists of text; Postgres
gives ``None`` for an empty unquoted cell (its CSV null), the other two
give ``""``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
from django.db import connection

# Values that break CSV writers and readers in different ways. NUL is left
# out: the pipeline rejects it, and Postgres text cannot hold it.
TRICKY_VALUES = [
    "plain",
    "a\rb",
    "a\nb",
    "a\r\nb",
    "\rcr at the start",
    "cr at the end\r",
    "\nlf at the start",
    "lf at the end\n",
    "\r\n",
    "\r",
    "two\r\rcrs",
    "\n\r",
    'say "hi"',
    '"',
    '""',
    "a,b",
    ",",
    " leading",
    "trailing ",
    "  both  ",
    " ",
    "a\tb",
    "trailing tab\t",
    "".join(chr(c) for c in range(1, 32)),
    "\x7f",
    "del\x7fin the middle",
    "\x1c\x1d\x1e\x85\u2028\u2029 other line breaks",
    "non-BMP \U0001f600 \U0001d11e",
    "\ufeffbom first",
    "\\.",
    "a\n\\.\nb",
    "\\N",
    "NULL",
    "NA",
    "#not a comment",
    "'quoted'",
    "x" * 3000,
]


def read_with_csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return rows[0], rows[1:]


def read_with_pandas(path: Path) -> tuple[list[str], list[list[str]]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    return [str(c) for c in frame.columns], [[str(v) for v in row] for row in frame.itertuples(index=False)]


def read_with_postgres(data: bytes, columns: int) -> list[list[str | None]]:
    """COPY the file into a temporary table of text columns; rows in file order."""
    names = [f"c{i}" for i in range(columns)]
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS csv_roundtrip")
        cur.execute(f"CREATE TEMP TABLE csv_roundtrip (n serial, {', '.join(f'{n} text' for n in names)})")
        with cur.cursor.copy(f"COPY csv_roundtrip ({', '.join(names)}) FROM STDIN (FORMAT csv, HEADER)") as copy:
            copy.write(data)
        cur.execute(f"SELECT {', '.join(names)} FROM csv_roundtrip ORDER BY n")
        rows = [list(r) for r in cur.fetchall()]
        cur.execute("DROP TABLE csv_roundtrip")
    return rows


def assert_round_trips(path: Path, header: list[str], expected: list[list[str | None]], *, reader: str) -> None:
    """The file reads back as exactly ``header`` and ``expected`` with ``reader``.

    ``reader`` is ``"csv_and_pandas"`` or ``"postgres_copy"``: the ``csv_reader`` fixture
    (tests/conftest.py) runs a test once with each, so the COPY check shows up as skipped
    on SQLite rather than silently missing. ``None`` in ``expected`` is a missing value: an
    empty cell, which csv and pandas read as ``""`` and Postgres as NULL.
    """
    data = path.read_bytes()
    if reader == "postgres_copy":
        as_null = [[None if v == "" else v for v in row] for row in expected]
        rows = read_with_postgres(data, len(header))
        assert len(rows) == len(expected)
        assert rows == as_null
        return
    assert reader == "csv_and_pandas", reader
    as_text = [["" if v is None else v for v in row] for row in expected]

    got_header, rows = read_with_csv(data)
    assert got_header == header
    assert len(rows) == len(expected)
    assert rows == as_text

    got_header, rows = read_with_pandas(path)
    assert got_header == header
    assert len(rows) == len(expected)
    assert rows == as_text


def notes_source(values: list[str], *, count: str = "1") -> bytes:
    """A file for the ``notes`` dataset, one row per value (ids N001…), every value quoted.

    Written with every field quoted, independently of the writers under test.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(["id", "text", "count", "flag"])
    for n, value in enumerate(values, start=1):
        writer.writerow([f"N{n:03}", value, count, "yes"])
    return buffer.getvalue().encode("utf-8")
