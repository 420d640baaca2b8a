"""A run's profile: statistics of its valid rows, per field, in bounded memory.

Each chunk's valid rows are profiled where they are validated (the
validating process, ``chunk_profile``) into a ``ChunkProfile`` of plain,
picklable data; the loader merges the chunks' partial profiles
(``RunProfile.merge``, pure Python) and stores the result with the run's end
(``RunProfile.to_json``). Memory stays bounded whatever the file's size:

- **distinct values**: a KMV sketch (the ``SKETCH_SIZE`` smallest 64-bit
  hashes of the distinct values). Exact while a field has fewer distinct
  values than that; past it an estimate, ``(k - 1) / h_k`` with ``h_k`` the
  k-th smallest hash scaled to [0, 1) (relative standard error about
  ``1 / sqrt(k - 2)``, ~2 %);
- **quantiles**: a uniform sample without replacement of ``SAMPLE_SIZE``
  values, kept as the values with the smallest pseudo-random priority (a
  hash of their line number): merging two samples keeps the smallest
  priorities of both, so the merged sample is still uniform. Exact while a
  field has at most that many values;
- **mean and standard deviation** are exact (Chan's parallel update of
  count, mean and sum of squared deviations); min and max are exact;
- **most frequent values**: exact counts while a field has at most
  ``TOP_TRACKED`` distinct values in the run (a low-cardinality field);
  past that the field has none (``top`` is null);
- **length** (text fields): exact min, max and mean in characters.

Numbers (integer, decimal, float) are profiled as floats; dates as days and
date-times as seconds since 1970-01-01 UTC, shown back as ISO text (their
standard deviation in days or seconds).

The profile describes the rows that passed validation (step 3). Rows that
step 4 then rejects as duplicates of earlier rows in the same file are
counted in it: they are rare, and taking them out would need a second pass.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

from ingestion.schema import SchemaSpec

__all__ = [
    "PROFILE_VERSION",
    "SAMPLE_SIZE",
    "SKETCH_SIZE",
    "TOP_SHOWN",
    "TOP_TRACKED",
    "ChunkProfile",
    "FieldPartial",
    "RunProfile",
    "chunk_profile",
    "field_kind",
]

PROFILE_VERSION = 1
SKETCH_SIZE = 2048
SAMPLE_SIZE = 2048
TOP_TRACKED = 1000
TOP_SHOWN = 10
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_HASH_SCALE = 2.0**64

NUMBER_TYPES = frozenset({"integer", "decimal", "float"})
TEXT_TYPES = frozenset({"string", "email", "url"})
_EPOCH = date(1970, 1, 1)
_EPOCH_DT = datetime(1970, 1, 1, tzinfo=UTC)


def field_kind(type_: str) -> str:
    """How a field type is profiled: "number", "date", "datetime", "text" or "boolean"."""
    if type_ in NUMBER_TYPES:
        return "number"
    if type_ in ("date", "datetime", "boolean"):
        return type_
    return "text"


@dataclass
class FieldPartial:
    """What a chunk (or the merge of several) knows about one field; plain data, cheap to pickle."""

    count: int = 0
    nulls: int = 0
    sketch: list[int] = field(default_factory=list)  # ascending hashes of distinct values, at most SKETCH_SIZE
    # Numbers, dates, date-times: exact moments and a sample of (priority, value).
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float | None = None
    max: float | None = None
    sample: list[tuple[int, float]] = field(default_factory=list)  # ascending by priority
    # Most frequent values (None: too many distinct values to keep count of).
    top: dict[str, int] | None = field(default_factory=dict)
    # Text: lengths in characters.
    len_min: int | None = None
    len_max: int | None = None
    len_sum: int = 0

    def merge(self, other: FieldPartial) -> None:
        self.count += other.count
        self.nulls += other.nulls
        if other.sketch:
            # Both are sorted: once this one is full, only the other's hashes below its largest can enter.
            extra = other.sketch
            if len(self.sketch) >= SKETCH_SIZE:
                extra = extra[: bisect.bisect_left(extra, self.sketch[-1])]
            if extra:
                self.sketch = sorted(set(self.sketch).union(extra))[:SKETCH_SIZE]
        if other.n:
            total = self.n + other.n
            delta = other.mean - self.mean
            self.m2 += other.m2 + delta * delta * self.n * other.n / total
            self.mean += delta * other.n / total
            self.n = total
            self.min = other.min if self.min is None else min(self.min, other.min)  # type: ignore[type-var]
            self.max = other.max if self.max is None else max(self.max, other.max)  # type: ignore[type-var]
            extra_sample = other.sample
            if len(self.sample) >= SAMPLE_SIZE:
                extra_sample = extra_sample[: bisect.bisect_left(extra_sample, (self.sample[-1][0],))]
            if extra_sample:
                # Two sorted runs: the sort merges them in linear time.
                self.sample = sorted(self.sample + extra_sample)[:SAMPLE_SIZE]
        if self.top is not None:
            if other.top is None:
                self.top = None
            else:
                for value, count in other.top.items():
                    self.top[value] = self.top.get(value, 0) + count
                if len(self.top) > TOP_TRACKED:
                    self.top = None
        if other.len_min is not None:
            self.len_min = other.len_min if self.len_min is None else min(self.len_min, other.len_min)
            self.len_max = other.len_max if self.len_max is None else max(self.len_max, other.len_max)  # type: ignore[type-var]
            self.len_sum += other.len_sum


@dataclass
class ChunkProfile:
    """One chunk's partial profile: a ``FieldPartial`` per schema field, by name."""

    rows: int = 0
    fields: dict[str, FieldPartial] = field(default_factory=dict)


def _columns_module() -> ModuleType:
    """``processing.quality.columns`` (polars), imported by the first chunk a process profiles.

    As ``pipeline.chunks.columnar_module``: web and queue workers import the
    pipeline, most of them never validate, and polars costs ~25 MB.
    """
    return importlib.import_module(f"{__package__}.columns")


def chunk_profile(schema: SchemaSpec, copy_lines: Sequence[str], *, use_polars: bool) -> ChunkProfile:
    """Profile one chunk's valid rows, given as their COPY lines (``ValidRow.copy``).

    ``use_polars`` where this process may use polars (``columnar.polars_usable``);
    otherwise the same statistics in plain Python (slower, the same results
    but for the distinct-values hashes, which never mix within a run).
    """
    if not copy_lines:
        return ChunkProfile(0, {f.name: FieldPartial() for f in schema.fields})
    if use_polars:
        partials: dict[str, FieldPartial] = _columns_module().chunk_fields(schema, copy_lines)
    else:
        partials = _python_fields(schema, copy_lines)
    return ChunkProfile(len(copy_lines), partials)


# --- The same statistics in plain Python ---------------------------------------------

_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def copy_unescape(text: str) -> str:
    """A COPY text value back to the text it spells (``copytext.copy_escape`` undone)."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in _UNESCAPES:
            out.append(_UNESCAPES[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def date_number(text: str) -> float:
    return float((date.fromisoformat(text) - _EPOCH).days)


def datetime_number(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - _EPOCH_DT) / timedelta(seconds=1)


def _python_fields(schema: SchemaSpec, copy_lines: Sequence[str]) -> dict[str, FieldPartial]:
    rows = [line.rstrip("\n").split("\t") for line in copy_lines]
    out: dict[str, FieldPartial] = {}
    for i, spec in enumerate(schema.fields):
        kind = field_kind(spec.type)
        partial = FieldPartial(count=len(rows))
        values: list[tuple[int, str]] = []
        for row in rows:
            cell = row[i + 2]
            if cell == "\\N":
                partial.nulls += 1
            else:
                values.append((int(row[1]), cell))
        distinct = {cell for _, cell in values}
        partial.sketch = heapq.nsmallest(SKETCH_SIZE, (text_hash(v) for v in distinct))
        if kind in ("number", "date", "datetime"):
            converters: dict[str, Callable[[str], float]] = {
                "number": float,
                "date": date_number,
                "datetime": datetime_number,
            }
            convert = converters[kind]
            numbers = [(line, convert(cell)) for line, cell in values]
            numbers = [(line, x) for line, x in numbers if math.isfinite(x)]
            if numbers:
                xs = [x for _, x in numbers]
                partial.n = len(xs)
                partial.mean = math.fsum(xs) / len(xs)
                partial.m2 = math.fsum((x - partial.mean) ** 2 for x in xs)
                partial.min, partial.max = min(xs), max(xs)
                partial.sample = heapq.nsmallest(SAMPLE_SIZE, ((text_hash(str(line)), x) for line, x in numbers))
        texts = [copy_unescape(cell) for _, cell in values] if kind == "text" else [cell for _, cell in values]
        if len(distinct) > TOP_TRACKED:
            partial.top = None
        else:
            top: dict[str, int] = {}
            for t in texts:
                top[t] = top.get(t, 0) + 1
            partial.top = top
        if kind == "text" and texts:
            lengths = [len(t) for t in texts]
            partial.len_min, partial.len_max, partial.len_sum = min(lengths), max(lengths), sum(lengths)
        out[spec.name] = partial
    return out


# --- The run's profile -----------------------------------------------------------------


class RunProfile:
    """The merge of a run's chunk profiles (in the loader: pure Python, never polars)."""

    def __init__(self, schema: SchemaSpec) -> None:
        self.types = {f.name: f.type for f in schema.fields}
        self.rows = 0
        self.fields = {f.name: FieldPartial() for f in schema.fields}
        # Set when the run resumed from a checkpoint: the chunks before it were profiled by an earlier attempt.
        self.partial_from_line: int | None = None

    def merge(self, chunk: ChunkProfile | None) -> None:
        if chunk is None:
            return
        self.rows += chunk.rows
        for name, partial in chunk.fields.items():
            if name in self.fields:
                self.fields[name].merge(partial)

    def to_json(self) -> dict[str, Any]:
        """The stored profile (JSON-ready): see docs/quality.md for every key."""
        return {
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "partial_from_line": self.partial_from_line,
            "fields": {name: field_summary(self.types[name], p) for name, p in self.fields.items()},
        }


def _distinct(partial: FieldPartial) -> tuple[int, bool]:
    k = len(partial.sketch)
    if k < SKETCH_SIZE:
        return k, True
    kth = (partial.sketch[-1] + 1) / _HASH_SCALE
    return round((k - 1) / kth), False


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, pandas' ``quantile``)."""
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _shown(kind: str, value: float | None) -> Any:
    if value is None:
        return None
    if kind == "date":
        return (_EPOCH + timedelta(days=round(value))).isoformat()
    if kind == "datetime":
        return (_EPOCH_DT + timedelta(seconds=value)).isoformat().replace("+00:00", "Z")
    return value


def field_summary(type_: str, p: FieldPartial) -> dict[str, Any]:
    """One field's stored statistics."""
    kind = field_kind(type_)
    non_null = p.count - p.nulls
    distinct, exact = _distinct(p)
    out: dict[str, Any] = {
        "type": type_,
        "count": p.count,
        "nulls": p.nulls,
        "null_share": p.nulls / p.count if p.count else 0.0,
        "distinct": min(distinct, non_null),
        "distinct_exact": exact,
        "distinct_share": min(distinct, non_null) / non_null if non_null else 0.0,
    }
    if kind in ("number", "date", "datetime"):
        values = sorted(x for _, x in p.sample)
        std = math.sqrt(p.m2 / (p.n - 1)) if p.n > 1 else (0.0 if p.n else None)
        out.update(
            {
                "min": _shown(kind, p.min),
                "max": _shown(kind, p.max),
                "mean": _shown(kind, p.mean if p.n else None),
                # Sample standard deviation (n - 1), in days for dates and seconds for date-times.
                "std": std,
                "quantiles": {f"p{round(q * 100)}": _shown(kind, _quantile(values, q)) for q in QUANTILES}
                if values
                else {},
                "quantiles_exact": p.n <= SAMPLE_SIZE,
            }
        )
        if kind != "number":
            # Dates and date-times as numbers too (days / seconds since 1970-01-01), for checks and charts.
            out["numeric"] = {"min": p.min, "max": p.max, "mean": p.mean if p.n else None}
    if p.top is not None and non_null:
        ranked = sorted(p.top.items(), key=lambda item: (-item[1], item[0]))[:TOP_SHOWN]
        out["top"] = [{"value": v, "count": c} for v, c in ranked]
    else:
        out["top"] = None
    if kind == "text":
        out["length"] = (
            {"min": p.len_min, "max": p.len_max, "mean": p.len_sum / non_null} if p.len_min is not None else None
        )
    return out
