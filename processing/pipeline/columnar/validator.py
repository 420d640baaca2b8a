"""``ColumnarValidator``: a chunk's rows through the column fields, rendered as ``ValidRow``s."""

from __future__ import annotations

import json
import os
import re
from array import array
from collections.abc import Sequence
from typing import cast

import polars as pl

from ..fields import compile_field
from ..validate import MAX_KEY_LENGTH, RejectedValues, RowValidator, ValidRow, printable
from ..validrows import JoinedRows, TextColumn, ValidRows
from .field import ColumnField, copy_text, json_string

__all__ = ["DISTINCT_SHARE", "ColumnarValidator", "Outcome", "polars_usable"]

Outcome = ValidRow | RejectedValues

# A column with at most this share of distinct values is converted one
# distinct value at a time by the scalar converter (categories, flags,
# countries): exact by construction and cheaper than the column expressions.
DISTINCT_SHARE = 0.1

# A lone surrogate: an undecodable byte (U+DC80-U+DCFF) or a JSON escape, text no database stores.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")

_polars_pid: int | None = None


def polars_usable() -> bool:
    """Whether this process may use polars: it is the one that first did (see the module docstring)."""
    global _polars_pid
    pid = os.getpid()
    if _polars_pid is None:
        _polars_pid = pid
    return _polars_pid == pid


class ColumnarValidator:
    """Validates the rows of one chunk as columns, exactly as ``RowValidator`` does row by row.

    Built on a ``RowValidator`` (the same schema, column map and size limit),
    which it hands the rows rejected for their width, characters, sizes or key.
    """

    def __init__(self, reference: RowValidator, *, distinct_share: float = DISTINCT_SHARE) -> None:
        self.reference = reference
        self.distinct_share = distinct_share
        # The plain converters: each distinct value reaches them once per chunk already.
        positions = reference.columns.positions
        self.fields = [ColumnField(spec, positions[spec.name], compile_field(spec)) for spec in reference.schema.fields]
        self.by_name = {f.name: f for f in self.fields}
        self.width = reference.width
        headers = reference.columns.headers
        # What raw_values names each column (two may share a name: the last value wins, as there).
        self.raw_keys = [printable(h) or f"column_{i + 1}" for i, h in enumerate(headers)]
        self.max_field_size = reference.max_field_size
        self.with_json = reference.with_json
        self.key_fields = reference.key_fields
        self.unique_fields = reference.unique_fields
        # '{"a":' before the first value, ',"b":' before the others.
        self.json_names = [("{" if i == 0 else ",") + json.dumps(f.name) + ":" for i, f in enumerate(self.fields)]

    def validate(self, lines: Sequence[int], rows: Sequence[list[str]]) -> list[Outcome]:
        """What ``RowValidator.validate(line, values)`` gives for each row, in order."""
        valid, positions, outcomes = self.validate_chunk(lines, rows)
        for position, row in zip(positions, valid, strict=True):
            outcomes[position] = row
        # Every row is now either valid in columns or has its own outcome.
        return cast(list[Outcome], outcomes)

    def validate_chunk(
        self, lines: Sequence[int], rows: Sequence[list[str]], raws: list[str] | None = None
    ) -> tuple[ValidRows, list[int], list[Outcome | None]]:
        """``validate`` as columns: the rows found valid in columns, their positions, and the other outcomes.

        The third list holds, for each row, what ``RowValidator.validate``
        gives for it, except at the rows of the first two (None there).
        ``raws``, when given, is each row's values joined by NUL.
        """
        reference = self.reference.validate
        if not rows or not self.width or not polars_usable():
            return (
                ValidRows.of([]),
                [],
                [reference(line, values) for line, values in zip(lines, rows, strict=True)],
            )
        # Each row as one text: what a valid row keeps as ``raw``, and how its
        # values reach polars (one string per row, split there).
        width, limit = self.width, self.max_field_size
        # Rows the columns never see, which the row validator rejects: a wrong
        # width, a NUL (more separators than values), a lone surrogate, a value
        # over the size limit.
        seps = width - 1
        if isinstance(rows, JoinedRows):
            # Each row but the kept ones has one value more than its text has NULs.
            raws = rows.raws
            to_reference = [raw.count("\x00") != seps for raw in raws]
            for i, values in rows.kept.items():
                if len(values) != width:
                    to_reference[i] = True
        else:
            if raws is None:
                raws = list(map("\x00".join, rows))
            to_reference = [len(v) != width or raw.count("\x00") != seps for v, raw in zip(rows, raws, strict=True)]
        if _SURROGATE_RE.search("".join(raws)):
            search = _SURROGATE_RE.search
            to_reference = [bad or bool(search(raw)) for bad, raw in zip(to_reference, raws, strict=True)]
        long_row = limit + width - 1
        for i, raw in enumerate(raws):
            if len(raw) > long_row and max(map(len, rows[i])) > limit:
                to_reference[i] = True
        kept = [i for i, bad in enumerate(to_reference) if not bad]
        outcomes: list[Outcome | None] = [None] * len(rows)
        valid, positions = ValidRows.of([]), list[int]()
        if kept:
            valid, positions = self._validate_columns(lines, rows, raws, kept, outcomes)
        in_columns = [False] * len(rows)
        for p in positions:
            in_columns[p] = True
        # (rows[i] only where the row validator needs it: a JoinedRows row is split when read.)
        others: list[Outcome | None] = [
            None if done else outcome if outcome is not None else reference(lines[i], rows[i])
            for i, (done, outcome) in enumerate(zip(in_columns, outcomes, strict=True))
        ]
        return valid, positions, others

    def _validate_columns(
        self,
        lines: Sequence[int],
        rows: Sequence[list[str]],
        raws: list[str],
        kept: list[int],
        outcomes: list[Outcome | None],
    ) -> tuple[ValidRows, list[int]]:
        """The valid rows among the ``kept`` ones and their positions; fills ``outcomes`` for the rejected.

        Rows in neither (left None) go to the row validator.
        """
        n = len(kept)
        joined = pl.Series("#raw", [raws[i] for i in kept], dtype=pl.String)
        split = joined.str.split_exact("\x00", self.width - 1).struct.unnest()
        # One column per field, named after it ("" for every row when the file has no such column).
        frame = split.select(
            pl.col(split.columns[f.index]).alias(f.name)
            if f.index is not None
            else pl.repeat("", n, dtype=pl.String).alias(f.name)
            for f in self.fields
        )
        # A column repeating few values goes to the scalar converter, once per distinct value.
        counts = frame.select(pl.all().n_unique()).row(0, named=True)
        vector = [f for f in self.fields if f.vector and counts[f.name] > self.distinct_share * n]
        vectorised = None
        if vector:
            stages = [f.stages() for f in vector]
            query = frame.lazy()
            for i in range(max(map(len, stages))):
                query = query.with_columns(
                    e for field_stages in stages if i < len(field_stages) for e in field_stages[i]
                )
            finals = [c for f in vector for c in (f.value_column, f.null_column, f.ok_column)]
            vectorised = query.select(finals).collect()
        cleans: list[pl.Series] = []
        errors: list[tuple[str, pl.Series]] = []
        for f in self.fields:
            clean, messages = f.column(frame, vectorised if f in vector else None)
            cleans.append(clean)
            if messages is not None:
                errors.append((f.name, messages))
        frame = pl.DataFrame(
            [
                pl.Series("#line", [lines[i] for i in kept], dtype=pl.Int64),
                pl.Series("#position", kept, dtype=pl.Int64),
                *cleans,
            ]
        )
        if errors:
            failed = pl.any_horizontal([m.is_not_null() for _, m in errors])
            self._reject(
                frame.select("#line", "#position").with_columns(*(m.alias(name) for name, m in errors)),
                failed,
                rows,
                outcomes,
            )
            frame = frame.filter(~failed)
        if frame.height == 0:
            return ValidRows.of([]), []
        keyed = {*self.key_fields, *self.unique_fields}
        rendered = [f.render(frame[f.name], keyed=f.name in keyed) for f in self.fields]
        json_parts: list[pl.Expr] = []
        line_text = pl.col("#line").cast(pl.String)
        cells: list[pl.Expr] = [line_text]
        copies: list[pl.Expr] = []
        for prefix, (value, cell, _, copy) in zip(self.json_names, rendered, strict=True):
            json_parts += [pl.lit(prefix), value]
            cells += [pl.lit(","), cell]
            copies += [pl.lit("\t"), copy]
        key_texts = {f.name: r[2] for f, r in zip(self.fields, rendered, strict=True)}
        if len(self.key_fields) == 1:
            key = key_texts[self.key_fields[0]]
        else:  # json.dumps of the list of texts (", " between items)
            parts: list[pl.Expr] = [pl.lit("[")]
            for i, name in enumerate(self.key_fields):
                parts += [pl.lit(", " if i else ""), json_string(key_texts[name])]
            key = pl.concat_str([*parts, pl.lit("]")])
        unique = [key_texts[name].alias(f"#u:{name}") for name in self.unique_fields]
        out = frame.select(
            pl.col("#position"),
            pl.col("#line"),
            (pl.concat_str([*json_parts, pl.lit("}")]) if self.with_json else pl.lit("")).alias("#json"),
            pl.concat_str([*cells, pl.lit("\r\n")]).alias("#processed"),
            key.alias("#key"),
            *unique,
            # The staging table's line: key, line, then the fields (copytext.copy_line).
            pl.concat_str([copy_text(key), pl.lit("\t"), line_text, *copies, pl.lit("\n")]).alias("#copy"),
        ).filter(pl.col("#key").str.len_chars() <= MAX_KEY_LENGTH)
        unique_values: list[dict[str, str]] | None = None
        if self.unique_fields:
            names = self.unique_fields
            lists = [out[f"#u:{name}"].to_list() for name in names]
            unique_values = [
                {n: v for n, v in zip(names, row, strict=True) if v is not None} for row in zip(*lists, strict=True)
            ]
            if not any(unique_values):
                unique_values = None
        positions = out["#position"].to_list()
        valid = ValidRows(
            out["#line"].to_list(),
            out["#key"].to_list(),
            _text_column(out["#json"]),
            unique_values,
            TextColumn.of([raws[p] for p in positions]),
            _text_column(out["#processed"]),
            _text_column(out["#copy"]),
        )
        return valid, positions

    def _reject(
        self, messages: pl.DataFrame, failed: pl.Expr, rows: Sequence[list[str]], outcomes: list[Outcome | None]
    ) -> None:
        """The rows with failing fields, rejected as ``RowValidator.validate`` rejects them."""
        names = messages.columns[2:]  # the failing fields, in schema order
        keys = self.raw_keys
        failing = messages.filter(failed)
        for line, position, *texts in failing.iter_rows():
            errors = {name: [text] for name, text in zip(names, texts, strict=True) if text is not None}
            # raw_values(headers, values): these values hold nothing printable() would change.
            outcomes[position] = RejectedValues(line, dict(zip(keys, rows[position], strict=True)), errors)


def _text_column(texts: pl.Series) -> TextColumn:
    """A string column (no nulls) as its UTF-8 bytes end to end and where each row's end, without a string per row."""
    ends = array("q")
    ends.frombytes(texts.str.len_bytes().cast(pl.Int64).cum_sum().to_numpy().tobytes())
    return TextColumn(texts.str.join("").cast(pl.Binary).item(), ends)
