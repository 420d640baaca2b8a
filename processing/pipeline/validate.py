"""Validate & transform: turn one raw CSV row into clean data or reasons.

The per-field work is compiled once per run (``fields.compile_field``);
``RowValidator`` applies it to a row and renders what the later steps need.
It is the definition of what validation gives: the pipeline validates a
chunk at a time with ``columnar.ColumnarValidator``, which gives exactly
what ``RowValidator.validate`` gives for every row (and hands it the rows it
rejects for their width, characters, sizes or key).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, final

import orjson

from ingestion.csvwrite import csv_row_renderer
from ingestion.fieldtypes import field_type
from ingestion.models import FieldType
from ingestion.schema import SchemaSpec

from .copytext import copy_line
from .fields import INT_MAX, INT_MIN, FieldError, compile_field, memoized, needs_work

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_KEY_LENGTH",
    "ROW_ERRORS",
    "ColumnMap",
    "FieldError",
    "HeaderError",
    "RejectedValues",
    "RowValidator",
    "ValidRow",
    "columns_map",
    "compile_field",
    "raw_values",
]

ROW_ERRORS = "__row__"
MAX_KEY_LENGTH = 512
# NUL, bytes the file's encoding could not decode (surrogate escapes U+DC80-U+DCFF),
# and any other lone surrogate (a JSON "\ud800" escape): none can be stored as text.
_BAD_CHARS_RE = re.compile("[\x00\ud800-\udfff]")
_UNDECODED_RE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class ColumnMap:
    """Where each schema field is found in a file's header row."""

    headers: tuple[str, ...]
    positions: dict[str, int | None]  # field name -> column index (None: column absent)
    unknown: tuple[str, ...]
    missing_optional: tuple[str, ...]


class HeaderError(ValueError):
    """The header row cannot be used; the whole run fails with this message."""


def _norm_header(h: str) -> str:
    return h.strip().lstrip("\ufeff").casefold()


@dataclass(frozen=True)
class ColumnMatch:
    """How a header row lines up with a schema, problems included (never raises)."""

    headers: tuple[str, ...]
    positions: dict[str, int | None]  # field name -> column index (None: column absent)
    unknown: tuple[str, ...]
    missing_required: tuple[str, ...]
    missing_optional: tuple[str, ...]
    duplicate: str | None  # the first duplicate column, described


def columns_match(schema: SchemaSpec, header: Sequence[str]) -> ColumnMatch:
    """Match file headers to schema fields; exact names first, then ignoring case and spaces."""
    headers = tuple(header)
    seen: dict[str, int] = {}
    duplicate: str | None = None
    for i, h in enumerate(headers):
        n = _norm_header(h)
        if n == "":
            continue
        if n in seen:
            duplicate = duplicate or f"{h.strip()!r} (columns {seen[n] + 1} and {i + 1})"
            continue
        seen[n] = i
    exact: dict[str, int] = {}
    for i, h in enumerate(headers):
        exact.setdefault(h, i)
    positions: dict[str, int | None] = {}
    used: set[int] = set()
    missing_required: list[str] = []
    missing_optional: list[str] = []
    for f in schema.fields:
        index = next((exact[h] for h in f.headers if h in exact), None)
        if index is None:
            index = next((seen[_norm_header(h)] for h in f.headers if _norm_header(h) in seen), None)
        positions[f.name] = index
        if index is None:
            (missing_required if f.required else missing_optional).append(f.headers[0])
        else:
            used.add(index)
    unknown = tuple(h for i, h in enumerate(headers) if i not in used and h.strip())
    return ColumnMatch(headers, positions, unknown, tuple(missing_required), tuple(missing_optional), duplicate)


def columns_map(schema: SchemaSpec, header: Sequence[str]) -> ColumnMap:
    """The column map a run reads with; a duplicate or missing required column is a ``HeaderError``."""
    match = columns_match(schema, header)
    if match.duplicate:
        raise HeaderError(f"duplicate column {match.duplicate}")
    if match.missing_required:
        names = ", ".join(repr(n) for n in match.missing_required)
        raise HeaderError(f"missing required column{'s' if len(match.missing_required) > 1 else ''} {names}")
    return ColumnMap(match.headers, match.positions, match.unknown, match.missing_optional)


@final  # chunk_validate tells outcomes apart with ``type(outcome) is ValidRow``
@dataclass(slots=True)
class ValidRow:
    """A row that passed validation, in the forms the later steps need.

    Built once per row and, on the fast path, sent to another process, so
    it holds strings only: ``data`` is ``data_json`` parsed again and
    ``values`` is ``raw`` split again (a valid row holds no NUL), for the
    few places that need them (``data_json`` is empty when the validator
    was asked for no JSON). ``processed`` is the row's line of the
    processed file, ``copy`` its line for the load's staging table
    (``copytext.copy_line``).
    """

    line: int
    key: str
    data_json: str
    unique_values: dict[str, str]
    raw: str
    processed: str
    copy: str

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.data_json)

    @property
    def values(self) -> list[str]:
        return self.raw.split("\x00")


@dataclass(slots=True)
class RejectedValues:
    line: int
    raw: dict[str, Any]
    errors: dict[str, list[str]]

    def __reduce__(self) -> tuple[type[RejectedValues], tuple[Any, ...]]:
        return RejectedValues, (self.line, self.raw, self.errors)


def printable(value: str) -> str:
    """Make a raw value storable as JSON text without hiding what was wrong.

    NUL becomes U+2400 (␀) and undecodable bytes become ``\\xNN``.
    """
    return _BAD_CHARS_RE.sub(_printable_char, value)


def _printable_char(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\x00":
        return "\u2400"
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def raw_values(headers: Sequence[str], values: Sequence[str]) -> dict[str, Any]:
    """The raw values of a row by header, extras kept under ``__extra__``."""
    raw: dict[str, Any] = {}
    for i, v in enumerate(values[: len(headers)]):
        raw[printable(headers[i]) or f"column_{i + 1}"] = printable(v)
    if len(values) > len(headers):
        raw["__extra__"] = [printable(v) for v in values[len(headers) :]]
    return raw


class RowValidator:
    """Validates rows of one file against one schema version."""

    def __init__(self, schema: SchemaSpec, columns: ColumnMap, max_field_size: int, *, with_json: bool = True) -> None:
        self.schema = schema
        # Whether valid rows carry their data as JSON (``data_json``), which
        # only the SQLite load reads: Postgres loads each row's COPY line.
        self.with_json = with_json
        self.columns = columns
        self.max_field_size = max_field_size
        self.width = len(columns.headers)
        # Errors about a column's raw text are reported under its field's name
        # when it maps to one, like every other field error.
        by_index = {i: name for name, i in columns.positions.items() if i is not None}
        self.column_names = [by_index.get(i, printable(h)) for i, h in enumerate(columns.headers)]
        self.fields = [
            (f.name, columns.positions[f.name], memoized(compile_field(f)) if needs_work(f) else compile_field(f))
            for f in schema.fields
        ]
        self.key_fields = list(schema.key)
        # Keys and unique values are compared as text each type gives: "1.5" and "1.50" are one decimal key.
        self.key_texts = {f.name: field_type(f.type).key_text for f in schema.fields}
        self.unique_fields = [f.name for f in schema.fields if f.constraints.get("unique")]
        # Positions in [line, *values] of fields whose clean value may be a
        # bool, which the processed file spells true/false.
        self.cell_fixes = [i + 1 for i, f in enumerate(schema.fields) if f.type == FieldType.BOOLEAN]
        # orjson writes exactly what json.dumps writes for text, whole numbers,
        # booleans and null (tested), eight times faster; floats it spells
        # differently (1e16, not 1e+16), and the JSON must be what json.dumps writes.
        has_floats = any(f.type == FieldType.FLOAT for f in schema.fields)
        self.encode = _encode_json if has_floats else _encode_json_fast

    def reject(self, line: int, values: Sequence[str], errors: dict[str, list[str]]) -> RejectedValues:
        return RejectedValues(line, raw_values(self.columns.headers, values), errors)

    def validate(self, line: int, values: list[str]) -> ValidRow | RejectedValues:
        if len(values) != self.width:
            return self.reject(line, values, {ROW_ERRORS: [f"expected {self.width} values, got {len(values)}"]})
        errors: dict[str, list[str]] = {}
        joined = "".join(values)
        # Only when the whole row is longer than the limit can one value be.
        if len(joined) > self.max_field_size and max(map(len, values)) > self.max_field_size:
            for header, v in zip(self.column_names, values, strict=True):
                if len(v) > self.max_field_size:
                    errors.setdefault(header, []).append(
                        f"value is {len(v)} characters long, over the limit of {self.max_field_size}"
                    )
            return self.reject(line, [v[:200] + "…" if len(v) > 200 else v for v in values], errors)
        if _BAD_CHARS_RE.search(joined):
            for header, v in zip(self.column_names, values, strict=True):
                if "\x00" in v:
                    errors.setdefault(header, []).append("contains a NUL byte")
                elif _UNDECODED_RE.search(v):
                    errors.setdefault(header, []).append("contains bytes that are not valid in the file's encoding")
                elif _BAD_CHARS_RE.search(v):
                    errors.setdefault(header, []).append("contains a lone surrogate escape, which is not valid text")
            return self.reject(line, values, errors)
        data: dict[str, Any] = {}
        for name, index, convert in self.fields:
            try:
                data[name] = convert(values[index] if index is not None else "")
            except FieldError as exc:
                errors[name] = [str(exc)]
        if errors:
            return self.reject(line, values, errors)
        key = self.key_of(data)
        if len(key) > MAX_KEY_LENGTH:
            return self.reject(line, values, {ROW_ERRORS: [f"natural key is longer than {MAX_KEY_LENGTH} characters"]})
        data_json = self.encode(data).decode() if self.with_json else ""
        unique_values = {n: self.key_texts[n](data[n]) for n in self.unique_fields if data[n] is not None}
        cells = [line, *data.values()]
        for i in self.cell_fixes:  # csv renders None as "" and numbers as str() already
            value = cells[i]
            if value is True or value is False:
                cells[i] = "true" if value else "false"
        processed = _render_csv(cells)
        raw = "\x00".join(values)  # valid rows never hold NUL, so this splits back exactly
        return ValidRow(line, key, data_json, unique_values, raw, processed, copy_line(key, line, list(data.values())))

    def key_of(self, data: dict[str, Any]) -> str:
        return natural_key([self.key_texts[k](data[k]) for k in self.key_fields])


def natural_key(texts: list[str]) -> str:
    """A record's key from its key fields' texts: the text itself, or a JSON array of several."""
    return texts[0] if len(texts) == 1 else json.dumps(texts, ensure_ascii=False)


# What json.dumps(data, ensure_ascii=False, separators=(",", ":")) gives,
# without building a new encoder for every row.
_stdlib_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _encode_json(data: dict[str, Any]) -> bytes:
    return _stdlib_encode(data).encode()


def _encode_json_fast(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data)


_render_csv = csv_row_renderer()
