"""The CSV reader measures the header while reading it: columns outside quoted values, and its length."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def rows_of(text: str) -> list[tuple[int, list[str], str]]:
    reader = CsvReader(io.BytesIO(text.encode("utf-8", "surrogateescape")), encoding="utf-8", delimiter=",")
    reader.read_header(max_columns=50)
    return [(r.line, r.values, r.error) for r in reader.rows()]


def chunked_rows_of(text: str, size: int, skip: int = 0) -> list[tuple[int, list[str], str]]:
    reader = CsvReader(io.BytesIO(text.encode("utf-8", "surrogateescape")), encoding="utf-8", delimiter=",")
    reader.read_header(max_columns=50)
    rows = reader.rows()
    skipped = [(r.line, r.values, r.error) for _, r in zip(range(skip), rows, strict=False)]
    chunks = list(reader.row_chunks(size))
    assert all(0 < len(lines) <= size for lines, _, _ in chunks)
    assert all(len(lines) == len(values) == len(errors) for lines, values, errors in chunks)
    return skipped + [row for chunk in chunks for row in zip(*chunk, strict=True)]


MESSY = (
    "id,name\n"
    "1,plain\n"
    "\n"
    '2,"two\nlines"\n'
    '3,"bad"quote\n'  # unreadable: a character after a closing quote
    "\r\n"
    "4,\r"
    '5,"a ""quoted"" \r\nvalue"\n'
    "6,\xff\n"  # an undecodable byte, kept as a surrogate
    "7\n"
    '8,"never closed\n9,x\n'
)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 100])
@pytest.mark.parametrize("skip", [0, 1, 3])
def test_rows_read_a_chunk_at_a_time_are_the_rows_read_one_at_a_time(size: int, skip: int) -> None:
    expected = rows_of(MESSY.replace("\xff", "\udcff"))

    assert chunked_rows_of(MESSY.replace("\xff", "\udcff"), size, skip) == expected
    assert [line for line, _, _ in expected] == [2, 4, 6, 8, 9, 11, 12, 13]
    assert [bool(error) for _, _, error in expected] == [False, False, True, False, False, False, False, True]
    assert "lines 13-14 were read as one value" in expected[-1][2]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(["a", "b", ",", '"', "\n", "\r", " ", "é"]), max_size=80),
    size=st.integers(min_value=1, max_value=5),
    skip=st.integers(min_value=0, max_value=3),
)
def test_chunked_reading_matches_row_reading_on_any_text(text: str, size: int, skip: int) -> None:
    text = "h1,h2\n" + text

    assert chunked_rows_of(text, size, skip) == rows_of(text)
