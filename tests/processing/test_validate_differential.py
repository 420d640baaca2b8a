"""The validator's shortcuts give exactly what the plain per-row path gives.

The reference is ``RowValidator`` with every field converted by its plain
``compile_field`` function, row by row (``chunk_validate_rows``). Held to
it: the memoized converters, and the columnar validator that the pipeline
runs (``chunk_validate``). The data are bench/generate_csv.py's messy rows
(about 10 % invalid here, every defect it knows) read by the pipeline's own
reader, and a table of edge cases; tests/processing/test_validate_columnar.py
adds every rule of the schema documentation and generated values.
"""

from __future__ import annotations

import importlib.util
import io
import json
import pickle
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest

from ingestion.fieldtypes.datetime import utc_text
from ingestion.reader import RawRow, reader_open
from ingestion.schema import SchemaSpec, schema_parse
from processing.pipeline.chunks import (
    _RawChunk,
    chunk_validate,
    chunk_validate_columns,
    chunk_validate_rows,
    columnar_of,
)
from processing.pipeline.columnar import DISTINCT_SHARE
from processing.pipeline.copytext import copy_line
from processing.pipeline.validate import (
    RejectedValues,
    RowValidator,
    ValidRow,
    _encode_json,
    _encode_json_fast,
    columns_map,
    compile_field,
)
from processing.pipeline.validrows import JoinedRows
from tests.conftest import SALES_SCHEMA

GENERATOR = Path(__file__).resolve().parents[2] / "bench" / "generate_csv.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_csv", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def messy() -> tuple[list[str], list[RawRow]]:
    out = io.StringIO()
    generator().generate(out, rows=6000, seed=5, invalid_rate=0.1)
    reader = reader_open(io.BytesIO(out.getvalue().encode()), format="csv", encoding="utf-8", delimiter=",")
    header = reader.read_header()
    assert header is not None
    return header, list(reader.rows())


def reference(schema: SchemaSpec, header: list[str]) -> RowValidator:
    validator = RowValidator(schema, columns_map(schema, header), 65536)
    validator.fields = [(f.name, validator.columns.positions[f.name], compile_field(f)) for f in schema.fields]
    return validator


def test_chunks_handed_between_processes_validate_exactly_as_plain_rows(
    messy: tuple[list[str], list[RawRow]],
) -> None:
    """A reading process hands chunks on as NUL-joined texts (``_RawChunk``), split only where a row is read."""
    header, rows = messy
    rows = list(rows)
    for i in range(7, len(rows), 97):  # values holding a NUL, rows the reader could not parse, one-value rows
        line, values = rows[i].line, rows[i].values
        rows[i] = [
            RawRow(line, [v + "\x00" if j == 2 else v for j, v in enumerate(values)]),
            RawRow(line, [], "unreadable CSV: x"),
            RawRow(line, ["\x00".join(values)]),
            RawRow(line, [""]),
        ][i % 4]
    schema = schema_parse(SALES_SCHEMA)
    plain = chunk_validate_rows(reference(schema, header), rows)
    validator = RowValidator(schema, columns_map(schema, header), 65536)

    handed = []
    for i in range(0, len(rows), 1500):
        part = rows[i : i + 1500]
        chunk = _RawChunk([r.line for r in part], [r.values for r in part], [r.error for r in part], False, 0)
        again = pickle.loads(pickle.dumps(chunk))  # noqa: S301 - our own bytes
        assert isinstance(again.values, JoinedRows)
        handed.append(chunk_validate_columns(validator, again.lines, again.values, again.errors, again.raws))

    assert [r for c in handed for r in c.valid] == plain.valid
    assert [r for c in handed for r in c.rejected] == plain.rejected
    assert len(plain.rejected) > 500 and len(plain.valid) > 4000


def test_memoized_fields_validate_the_generators_rows_exactly_as_plain_ones(
    messy: tuple[list[str], list[RawRow]],
) -> None:
    header, rows = messy
    schema = schema_parse(SALES_SCHEMA)
    # Twice over, so that values (good and bad) come back from the memo.
    rows = rows + [RawRow(r.line + 100_000, r.values, r.error) for r in rows]

    fast = chunk_validate_rows(RowValidator(schema, columns_map(schema, header), 65536), rows)
    plain = chunk_validate_rows(reference(schema, header), rows)

    assert fast.valid == plain.valid
    assert fast.rejected == plain.rejected
    assert len(plain.rejected) > 500 and len(plain.valid) > 10_000  # both kinds were exercised


@pytest.mark.parametrize("share", [0.0, DISTINCT_SHARE, 1.0])
def test_the_columnar_validator_validates_the_generators_rows_exactly_as_plain_rows(
    messy: tuple[list[str], list[RawRow]], share: float
) -> None:
    header, rows = messy
    schema = schema_parse(SALES_SCHEMA)
    plain = chunk_validate_rows(reference(schema, header), rows)
    validator = RowValidator(schema, columns_map(schema, header), 65536)
    columnar_of(validator).distinct_share = share

    columns = [chunk_validate(validator, rows[i : i + 2000]) for i in range(0, len(rows), 2000)]

    assert [r for c in columns for r in c.valid] == plain.valid
    assert [r for c in columns for r in c.rejected] == plain.rejected
    assert sum(c.rows for c in columns) == plain.rows and columns[-1].last_line == plain.last_line


EDGE_SCHEMA = {
    "slug": "edges",
    "key": ["k", "d"],
    "fields": [
        {"name": "k", "type": "string", "required": True, "transforms": ["strip"], "max_length": 600},
        {"name": "d", "type": "decimal", "required": True, "thousands_separator": ",", "min": -5},
        {"name": "i", "type": "integer", "null_values": ["NA", "-"], "min": 0, "max": 1000},
        {"name": "f", "type": "float"},
        {"name": "b", "type": "boolean", "required": True},
        {"name": "day", "type": "date", "formats": ["%d/%m/%Y"]},
        {"name": "t", "type": "datetime", "default_timezone": "Europe/Paris", "formats": ["%d/%m/%Y %H:%M"]},
        {"name": "e", "type": "email", "unique": True},
        {"name": "u", "type": "url"},
        {"name": "c", "type": "string", "transforms": ["collapse_whitespace", "upper"], "choices": ["A B", "C"]},
        {"name": "p", "type": "integer", "choices": [1, 2, 3]},
    ],
}
EDGE_HEADER = ["k", "d", "i", "f", "b", "day", "t", "e", "u", "c", "p", "extra"]
GOOD = ["k1", "1,234.50", "7", "1e3", "yes", "2024-02-29", "2024-01-02T03:04:05+02:00"]
GOOD += ["a@example.com", "https://example.com/x", " a   b ", "2", "ignored"]
# Per column, values the tests of test_validate.py exercise: accepted, refused, nulls, odd text.
EDGE_VALUES: dict[int, list[str]] = {
    0: ["", "  ", " k ", "x" * 513, "x" * 600, "naïve", "東京", "k\x00", "k\udcff"],
    1: ["", "1.50", "01.5", "1.5", "-0", "0.0", "1,23", "12,345,678.9", "-6", "1e3", "٣", "9" * 41, "+.5"],
    2: ["", "NA", "-", "0", "1000", "1001", "-1", "1.0", "1.5", " 42 ", "9" * 30, "١٢", "1,000"],
    3: ["", "nan", "inf", "1e400", "-0", ".5", "5.", "1_000", " 2.5 "],
    4: ["", "TRUE", " n ", "maybe", "1", "0", "ja"],
    5: ["", "2024-02-30", "31/12/2024", "2024-1-1", "20240101"],
    6: ["", "2024-03-31T02:30:00", "0001-01-01T00:30:00+01:00", "31/12/2024 23:59", "2024-01-02 03:04", "soon"],
    7: ["", "bad@", "a@b", "user@bücher.example", " a@example.com", "x" * 65 + "@example.com", "a@example.com"],
    8: ["", "ftp://example.com", "https://", "http://localhost:8000/", "https://ex ample.com"],
    9: ["", "c", "a\tb", "A  B", "d", "  "],
    10: ["", "1.0", "4", "03", "x"],
    11: ["", "\x00", "\udc80", "x" * 70_000],
}


def edge_rows() -> list[RawRow]:
    rows: list[list[str]] = []
    n = 0
    for column, values in EDGE_VALUES.items():
        for value in values:
            n += 1
            row = [f"k{n}", *GOOD[1:]]
            row[7] = f"u{n}@example.com"  # unique values stay unique unless a test says otherwise
            row[column] = value
            rows.append(row)
    rows += [GOOD[:5], [*GOOD, "one too many"], GOOD[:-1], ["x" * 70_000] * len(GOOD)]
    rows += [["k0", *GOOD[1:]]] * 2  # a key repeated within the chunk is the loader's business: both valid here
    # Every row twice, so memoized values and failures come round again.
    return [RawRow(i + 2, list(values)) for i, values in enumerate(rows + rows)]


def test_memoized_fields_validate_the_test_suites_edge_cases_exactly_as_plain_ones() -> None:
    schema = schema_parse(EDGE_SCHEMA)
    rows = edge_rows()

    fast = chunk_validate_rows(RowValidator(schema, columns_map(schema, EDGE_HEADER), 65536), rows)
    plain = chunk_validate_rows(reference(schema, EDGE_HEADER), rows)

    assert fast.valid == plain.valid
    assert fast.rejected == plain.rejected
    assert len(plain.valid) > 40 and len(plain.rejected) > 40  # both kinds, every column


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_the_columnar_validator_validates_the_test_suites_edge_cases_exactly_as_plain_rows(share: float) -> None:
    schema = schema_parse(EDGE_SCHEMA)
    rows = edge_rows()
    rows += [RawRow(len(rows) + 2, ["k", "1"], "a quote is not closed"), RawRow(len(rows) + 3, [], "")]
    validator = RowValidator(schema, columns_map(schema, EDGE_HEADER), 65536)
    columnar_of(validator).distinct_share = share

    columns = chunk_validate(validator, rows)
    plain = chunk_validate_rows(reference(schema, EDGE_HEADER), rows)

    assert columns.valid == plain.valid
    assert columns.rejected == plain.rejected
    assert (columns.rows, columns.last_line) == (plain.rows, plain.last_line)


class ExtraValidator(RowValidator):
    """A validator changing what validate gives: only the row path can give it."""

    def validate(self, line: int, values: list[str]) -> ValidRow | RejectedValues:
        return self.reject(line, values, {"__row__": ["refused by a subclass"]})


def test_a_validator_that_overrides_validate_is_used_row_by_row() -> None:
    schema = schema_parse(EDGE_SCHEMA)
    rows = edge_rows()

    result = chunk_validate(ExtraValidator(schema, columns_map(schema, EDGE_HEADER), 65536), rows)

    assert not result.valid and len(result.rejected) == len(rows)


def _stdlib(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_the_fast_json_encoder_writes_what_json_dumps_writes() -> None:
    # Every code point but the surrogates (which validation refuses), in one string.
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    values = [text, "", 0, -1, 2**63 - 1, -(2**63), True, False, None, {"a": [1, "x", None]}]
    for value in values:
        assert _encode_json_fast({"v": value}) == _stdlib({"v": value}).encode()


def test_validated_rows_are_encoded_as_json_dumps_encodes_them(messy: tuple[list[str], list[RawRow]]) -> None:
    header, rows = messy
    schema = schema_parse(SALES_SCHEMA)
    validator = RowValidator(schema, columns_map(schema, header), 65536)
    assert validator.encode is _encode_json_fast

    valid = chunk_validate(validator, rows).valid
    assert valid == chunk_validate_rows(validator, rows).valid

    assert len(valid) > 5000
    for row in valid:
        assert row.data_json == _stdlib(json.loads(row.data_json))
        assert row.copy == copy_line(row.key, row.line, list(row.data.values()))


def test_schemas_with_floats_keep_the_standard_encoder() -> None:
    schema = schema_parse(EDGE_SCHEMA)
    validator = RowValidator(schema, columns_map(schema, EDGE_HEADER), 65536)
    assert validator.encode is _encode_json

    row = validator.validate(2, ["k", "1", "1", "1e16", "yes", "", "", "", "", "", "", "x"])
    assert row.data_json == _stdlib(row.data)
    assert '"f":1e+16' in row.data_json


def _utc_reference(moment: datetime) -> str:
    offset = moment.utcoffset()
    naive = moment.replace(tzinfo=None)
    if offset:
        naive -= offset
    return naive.isoformat(timespec="microseconds") + "Z"


def test_datetimes_are_written_in_utc_as_the_plain_conversion_writes_them() -> None:
    zones = [None, UTC, timezone(timedelta(hours=5, minutes=45)), timezone(timedelta(hours=-9, minutes=-30))]
    zones += [ZoneInfo("Europe/Paris"), ZoneInfo("America/St_Johns"), ZoneInfo("Australia/Lord_Howe")]
    rng = random.Random(7)
    moments = [datetime(1, 1, 1, 12), datetime(9999, 12, 31, 11, 59, 59, 999999), datetime(2024, 3, 31, 2, 30)]
    starts = [datetime(rng.randint(1, 9998), 1, 1) for _ in range(500)]
    moments += [start + timedelta(seconds=rng.randint(0, 365 * 86400)) for start in starts]
    moments += [m.replace(microsecond=rng.randint(0, 999_999)) for m in moments[:200]]
    checked = 0
    for moment in moments:
        for zone in zones:
            aware = moment.replace(tzinfo=zone) if zone else moment.replace(tzinfo=ZoneInfo("UTC"))
            try:
                expected = _utc_reference(aware)
            except OverflowError:
                with pytest.raises(OverflowError):
                    utc_text(aware)
                continue
            assert utc_text(aware) == expected
            checked += 1
    assert checked > 4000
