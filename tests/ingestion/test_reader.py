"""The CSV reader measures the header while reading it: columns outside quoted values, and its length."""

from __future__ import annotations

import io

import pytest

from ingestion.reader import CsvReader, HeaderTooLarge


def read(text: str, max_columns: int, delimiter: str = ",") -> tuple[list[str] | None, list[list[str]]]:
    reader = CsvReader(io.BytesIO(text.encode()), encoding="utf-8", delimiter=delimiter)
    header = reader.read_header(max_columns=max_columns)
    return header, [row.values for row in reader.rows()]


@pytest.mark.parametrize(
    "header",
    [
        'a,"b,c"',  # a delimiter inside a quoted name is not a column
        '"a ""x, y""",b',  # nor inside doubled quotes
        'a,"b\nc"',  # a quoted name may span lines
        'a,b"c',  # a quote inside an unquoted name opens nothing
    ],
)
def test_it_counts_the_header_columns_as_the_parser_splits_them(header: str) -> None:
    text = f"\n\r\n{header}\r\n1,2\n3,4\n"

    parsed, rows = read(text, max_columns=2)

    assert parsed is not None and len(parsed) == 2
    assert rows == [["1", "2"], ["3", "4"]]


def test_it_refuses_one_column_over_the_cap_with_the_exact_count() -> None:
    message = r"^the header has 3 columns; at most 2 are allowed \(PIPELINE_MAX_COLUMNS\)$"
    with pytest.raises(HeaderTooLarge, match=message):
        read("a,b,c\n1,2,3\n", max_columns=2)


def test_a_header_over_the_cap_past_the_length_bound_is_counted_as_more_than_the_cap() -> None:
    with pytest.raises(HeaderTooLarge, match=r"^the header has more than 2 columns"):
        read(";".join(["x" * 900] * 100) + "\n", max_columns=2, delimiter=";")  # 90,000 characters


def test_rows_keep_their_line_numbers_after_the_measured_header() -> None:
    reader = CsvReader(io.BytesIO(b'\n"a\nb",c\n1,2\n\n3,4\n'), encoding="utf-8", delimiter=",")

    assert reader.read_header(max_columns=5) == ["a\nb", "c"]
    assert reader.header_line == 2
    assert [(r.line, r.values) for r in reader.rows()] == [(4, ["1", "2"]), (6, ["3", "4"])]


def test_a_header_longer_than_a_read_piece_is_parsed_whole() -> None:
    names = [f"{'n' * 900}{i:03d}" for i in range(200)]  # 180,600 characters, read in several pieces

    header, rows = read(",".join(names) + "\n" + ",".join("v" * 200) + "\n", max_columns=200)

    assert header == names
    assert rows == [["v"] * 200]
