"""Validating chunks ahead of the load, in a child process or a thread (processing/pipeline/chunks.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion.models import Dataset
from ingestion.reader import CsvReader, RawRow
from ingestion.selectors import schema_spec
from processing.pipeline.chunks import (
    MAX_PROCESSES,
    ChunkResult,
    ValidatedChunks,
    _RawChunk,
    chunk_owner,
    default_processes,
)
from processing.pipeline.validate import ROW_ERRORS, RejectedValues, RowValidator, ValidRow, columns_map
from tests.conftest import SALES_HEADER, sales_row

pytestmark = pytest.mark.django_db

MODES = pytest.mark.parametrize("processes", [2, 1, 0], ids=["two-processes", "one-process", "thread"])


def messy_file(csv_file: Callable[..., Path]) -> Path:
    rows = [sales_row(i, description=f"line {i}") for i in range(1, 26)]
    rows[3] = "S4,not-a-date,books,1,1,a@example.com,US,,yes"  # invalid value
    rows[7] = "S8,2024-01-02,books"  # ragged
    rows[9] = sales_row(10, description='"two\nlines, and ""quotes"""')  # spans two lines
    rows[12] = sales_row(13, description="Zoë — café")
    return csv_file("\n".join([SALES_HEADER, *rows]) + "\n")


def collect(dataset: Dataset, path: Path, *, processes: int, size: int = 4) -> list[ChunkResult]:
    schema = schema_spec(dataset.current_schema)
    with path.open("rb") as fh:
        reader = CsvReader(fh, encoding="utf-8", delimiter=",")
        header = reader.read_header()
        assert header is not None
        validator = RowValidator(schema, columns_map(schema, header), 1000)
        with ValidatedChunks(reader, validator, reader.rows(), size, processes=processes) as chunks:
            assert chunks.processes == processes
            return list(chunks)


def as_plain(results: list[ChunkResult]) -> list[tuple[object, ...]]:
    return [
        (
            r.rows,
            r.last_line,
            r.is_last,
            r.bytes_read,
            [(v.line, v.key, v.data_json, v.unique_values, v.values, v.processed, v.copy) for v in r.valid],
            [(x.line, x.raw, x.errors) for x in r.rejected],
        )
        for r in results
    ]


@MODES
def test_chunks_come_in_file_order_with_their_rows_and_checkpoint_data(
    sales: Dataset, csv_file: Callable[..., Path], processes: int
) -> None:
    path = messy_file(csv_file)

    results = collect(sales, path, processes=processes)

    assert [r.rows for r in results] == [4] * 6 + [1]
    assert [r.is_last for r in results] == [False] * 6 + [True]
    assert results[-1].bytes_read == path.stat().st_size
    valid_lines = [v.line for r in results for v in r.valid]
    assert valid_lines == sorted(valid_lines)
    assert {x.line for r in results for x in r.rejected} == {5, 9}
    assert sum(len(r.valid) + len(r.rejected) for r in results) == 25
    assert results[-1].last_line == 27  # one record spans two lines


def test_child_processes_give_exactly_what_a_thread_gives(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = messy_file(csv_file)

    by_thread = as_plain(collect(sales, path, processes=0))

    assert as_plain(collect(sales, path, processes=1)) == by_thread
    assert as_plain(collect(sales, path, processes=2)) == by_thread
    assert as_plain(collect(sales, path, processes=3, size=2)) == as_plain(collect(sales, path, processes=0, size=2))


@pytest.mark.parametrize("size", [25, 13, 9, 7, 5, 4, 3, 2])
def test_the_file_ends_where_the_caller_looks_whatever_the_number_of_chunks(
    sales: Dataset, csv_file: Callable[..., Path], size: int
) -> None:
    path = messy_file(csv_file)

    by_thread = as_plain(collect(sales, path, processes=0, size=size))

    assert as_plain(collect(sales, path, processes=2, size=size)) == by_thread
    assert as_plain(collect(sales, path, processes=3, size=size)) == by_thread


def test_the_reading_process_validates_one_chunk_in_each_round() -> None:
    assert [chunk_owner(i, 1) for i in range(4)] == [0, 0, 0, 0]
    assert [chunk_owner(i, 2) for i in range(7)] == [0, 1, 1, 0, 1, 1, 0]
    assert [chunk_owner(i, 3) for i in range(10)] == [0, 1, 1, 2, 2, 0, 1, 1, 2, 2]


def test_a_chunk_survives_pickling_unchanged(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    [result] = collect(sales, messy_file(csv_file), processes=0, size=100)

    again = pickle.loads(pickle.dumps(result))  # noqa: S301 - our own bytes

    assert as_plain([again]) == as_plain([result])
    assert all(type(v) is ValidRow for v in again.valid)
    assert [v.values[7] for v in again.valid if v.key == "S10"] == ['two\nlines, and "quotes"']


def nasty_file(csv_file: Callable[..., Path]) -> Path:
    """Rows a reading process hands on that do not split back by NUL, or that hold no values."""
    rows = [sales_row(i, description=f"line {i}") for i in range(1, 13)]
    rows[1] = sales_row(2, description="a\x00b")  # a NUL inside a value
    rows[2] = 'S3,2024-01-02,"books"x,1,1,a@example.com,US,,yes'  # malformed quoting: a reading error
    rows[4] = "S5"  # one value
    rows[5] = '""'  # one empty value
    rows[6] = sales_row(7, description="\x00")  # a value that is only a NUL
    rows[8] = sales_row(9, description='"three\nphysical\nlines"')
    return csv_file("\n".join([SALES_HEADER, *rows]) + "\n")


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_rows_handed_between_processes_keep_their_values_errors_and_lines(
    sales: Dataset, csv_file: Callable[..., Path], size: int
) -> None:
    path = nasty_file(csv_file)

    by_thread = as_plain(collect(sales, path, processes=0, size=size))

    assert as_plain(collect(sales, path, processes=2, size=size)) == by_thread
    assert as_plain(collect(sales, path, processes=3, size=size)) == by_thread
    rejected = {x.line: x for r in collect(sales, path, processes=2, size=size) for x in r.rejected}
    assert set(rejected) == {3, 4, 6, 7, 8}
    assert "unreadable CSV" in rejected[4].errors[ROW_ERRORS][0]
    assert rejected[6].errors[ROW_ERRORS] == ["expected 9 values, got 1"]


def test_a_raw_chunk_survives_pickling_unchanged() -> None:
    values = [["a", "b"], ["a\x00b", "c"], [], [""], ["\x00"], ["\udcff", "é"]]
    errors = ["", "", "unreadable CSV: x", "", "", ""]
    chunk = _RawChunk([2, 3, 5, 6, 9, 10], values, errors, True, 123)

    again = pickle.loads(pickle.dumps(chunk))  # noqa: S301 - our own bytes

    assert again.rows() == chunk.rows()
    assert (again.is_last, again.bytes_read) == (True, 123)
    assert again.raws == ["\x00".join(v) for v in values]


@MODES
def test_an_error_while_reading_reaches_the_caller(
    sales: Dataset, csv_file: Callable[..., Path], processes: int
) -> None:
    schema = schema_spec(sales.current_schema)
    path = csv_file(SALES_HEADER + "\n")

    def rows() -> Iterator[RawRow]:
        for i in range(1, 6):
            yield RawRow(i + 1, sales_row(i).split(","))
        raise LookupError("the disk went away")

    with path.open("rb") as fh:
        reader = CsvReader(fh, encoding="utf-8", delimiter=",")
        validator = RowValidator(schema, columns_map(schema, SALES_HEADER.split(",")), 1000)
        seen: list[int] = []
        with (
            pytest.raises(LookupError, match="the disk went away"),
            ValidatedChunks(reader, validator, rows(), 2, processes=processes) as chunks,
        ):
            for result in chunks:
                seen.append(result.rows)

    assert seen == [2]  # chunks before the error (and its look-ahead) were delivered first


@MODES
def test_leaving_early_stops_the_producer(sales: Dataset, csv_file: Callable[..., Path], processes: int) -> None:
    schema = schema_spec(sales.current_schema)
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, 2001))]) + "\n")

    with path.open("rb") as fh:
        reader = CsvReader(fh, encoding="utf-8", delimiter=",")
        header = reader.read_header()
        assert header is not None
        validator = RowValidator(schema, columns_map(schema, header), 1000)
        chunks = ValidatedChunks(reader, validator, reader.rows(), 10, processes=processes)
        with pytest.raises(RuntimeError, match="stop here"), chunks:
            for _ in chunks:
                raise RuntimeError("stop here")

    assert multiprocessing.active_children() == []
    assert "pipeline-validate" not in [t.name for t in threading.enumerate()]


def test_it_forks_only_where_that_is_safe() -> None:
    # Earlier tests (a live server, a cluster) may have left threads running here.
    alone = threading.active_count() == 1
    assert default_processes() == (min(MAX_PROCESSES, os.cpu_count() or 1) if alone else 0)

    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert default_processes() == 0  # another thread may hold a lock the child would need
    finally:
        release.set()
        other.join()


class NicenessRecordingValidator(RowValidator):
    """Writes the niceness of the thread validating each row into its description."""

    def validate(self, line: int, values: list[str]) -> ValidRow | RejectedValues:
        values = [*values]
        values[SALES_HEADER.split(",").index("description")] = str(os.getpriority(os.PRIO_PROCESS, 0))
        return super().validate(line, values)


@MODES
def test_validating_children_run_at_the_pipeline_niceness(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any, processes: int
) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "NICE": 7}
    before = os.getpriority(os.PRIO_PROCESS, 0)
    schema = schema_spec(sales.current_schema)
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, 41))]) + "\n")

    with path.open("rb") as fh:
        reader = CsvReader(fh, encoding="utf-8", delimiter=",")
        header = reader.read_header()
        assert header is not None
        validator = NicenessRecordingValidator(schema, columns_map(schema, header), 1000)
        with ValidatedChunks(reader, validator, reader.rows(), 4, processes=processes) as chunks:
            results = list(chunks)

    seen = {json.loads(v.data_json)["description"] for r in results for v in r.valid}
    assert seen == {str(min(19, before + 7))}  # every validating process (or the thread) is niced
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the caller, which loads, is not


def test_a_pipeline_niceness_of_0_leaves_the_validating_thread_as_it_was(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any
) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "NICE": 0}
    before = os.getpriority(os.PRIO_PROCESS, 0)
    schema = schema_spec(sales.current_schema)
    path = csv_file("\n".join([SALES_HEADER, *(sales_row(i) for i in range(1, 9))]) + "\n")

    with path.open("rb") as fh:
        reader = CsvReader(fh, encoding="utf-8", delimiter=",")
        header = reader.read_header()
        assert header is not None
        validator = NicenessRecordingValidator(schema, columns_map(schema, header), 1000)
        with ValidatedChunks(reader, validator, reader.rows(), 4, processes=0) as chunks:
            results = list(chunks)

    assert {json.loads(v.data_json)["description"] for r in results for v in r.valid} == {str(before)}
