"""The one CSV dialect we write: every value that could end a row is quoted."""

from __future__ import annotations

import csv
import io

import pytest

from ingestion.csvwrite import csv_lines, csv_row_renderer, csv_writer


@pytest.mark.parametrize("value", ["a\rb", "\r", "a\nb", "a\r\nb", 'a"b', "a,b"])
def test_it_quotes_values_holding_a_line_break_a_quote_or_the_delimiter(value: str) -> None:
    line = csv_row_renderer()(["x", value])

    assert line == 'x,"' + value.replace('"', '""') + '"\r\n'
    assert list(csv.reader(io.StringIO(line, newline=""))) == [["x", value]]


@pytest.mark.parametrize("value", [" a ", "a\tb", "\x01\x1f\x7f", "\U0001f600", "\\N"])
def test_it_leaves_other_values_unquoted(value: str) -> None:
    assert csv_row_renderer()([value, "x"]) == value + ",x\r\n"


def test_the_writer_the_renderer_and_the_streamed_lines_agree() -> None:
    rows = [["a\rb", "c"], ["", None], ["\\."]]
    buffer = io.StringIO(newline="")
    csv_writer(buffer).writerows(rows)

    assert buffer.getvalue() == "".join(csv_row_renderer()(r) for r in rows)
    # Streams also quote a lone \. so a PostgreSQL COPY reads past it.
    assert list(csv_lines(rows)) == ['"a\rb",c\r\n', ",\r\n", '"\\."\r\n']
