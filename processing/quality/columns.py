"""A chunk's profile computed as columns with polars (``profile.chunk_profile``).

Gives what ``profile._python_fields`` gives for the same rows, but for the
hashes of the distinct-value sketch (polars' own hash; a run's chunks are
all profiled one way). Imported only by the processes that validate.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ingestion.schema import SchemaSpec

from .profile import SAMPLE_SIZE, SKETCH_SIZE, TOP_TRACKED, FieldPartial, field_kind

_SEED = 0x5EED
_ESCAPED = ["\\\\", "\\t", "\\n", "\\r"]
_PLAIN = ["\\", "\t", "\n", "\r"]


def _number(kind: str, cell: pl.Expr) -> pl.Expr:
    if kind == "date":
        return cell.str.to_date("%Y-%m-%d", strict=False).cast(pl.Int32).cast(pl.Float64)
    if kind == "datetime":
        moment = cell.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", strict=False)
        return moment.dt.epoch("us").cast(pl.Float64) / 1_000_000
    return cell.cast(pl.Float64, strict=False)


def chunk_fields(schema: SchemaSpec, copy_lines: Sequence[str]) -> dict[str, FieldPartial]:
    """Each field's ``FieldPartial`` for the valid rows whose COPY lines are given."""
    width = len(schema.fields) + 2
    lines = pl.Series("#copy", copy_lines, dtype=pl.String).str.strip_suffix("\n")
    split = lines.str.split_exact("\t", width - 1).struct.unnest()
    names = split.columns
    frame = split.select(
        pl.col(names[1]).cast(pl.Int64).hash(seed=_SEED).alias("#priority"),
        *(
            pl.when(pl.col(names[i + 2]) != "\\N").then(pl.col(names[i + 2])).alias(f.name)
            for i, f in enumerate(schema.fields)
        ),
    )
    n = frame.height
    out: dict[str, FieldPartial] = {}
    for spec in schema.fields:
        kind = field_kind(spec.type)
        cell = frame[spec.name]
        values = cell.drop_nulls()
        partial = FieldPartial(count=n, nulls=n - values.len())
        distinct = values.unique()
        partial.sketch = sorted(distinct.hash(seed=_SEED).bottom_k(SKETCH_SIZE).to_list())
        if kind in ("number", "date", "datetime"):
            numbers = (
                frame.select(pl.col("#priority"), _number(kind, pl.col(spec.name)).alias("x"))
                .drop_nulls()
                .filter(pl.col("x").is_finite())
            )
            if numbers.height:
                stats = numbers.select(
                    pl.col("x").mean().alias("mean"),
                    pl.col("x").min().alias("min"),
                    pl.col("x").max().alias("max"),
                    ((pl.col("x") - pl.col("x").mean()) ** 2).sum().alias("m2"),
                ).row(0, named=True)
                partial.n = numbers.height
                partial.mean, partial.m2 = stats["mean"], stats["m2"]
                partial.min, partial.max = stats["min"], stats["max"]
                kept = numbers.bottom_k(SAMPLE_SIZE, by="#priority")
                partial.sample = sorted(zip(kept["#priority"].to_list(), kept["x"].to_list(), strict=True))
        # COPY escapes only backslashes, tabs and line breaks: most columns have none to undo.
        escaped = kind == "text" and values.str.contains("\\", literal=True).any()
        texts = values.str.replace_many(_ESCAPED, _PLAIN) if escaped else values
        if distinct.len() > TOP_TRACKED:
            partial.top = None
        else:
            counts = texts.value_counts(name="#count")
            partial.top = dict(zip(counts[spec.name].to_list(), counts["#count"].to_list(), strict=True))
        if kind == "text" and values.len():
            lengths = texts.str.len_chars()
            partial.len_min, partial.len_max, partial.len_sum = lengths.min(), lengths.max(), lengths.sum()  # type: ignore[assignment]
        out[spec.name] = partial
    return out
