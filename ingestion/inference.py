"""Proposing a schema file from a sample of a CSV file (``infer_schema``)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from itertools import islice
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.utils.text import slugify

from .dialect import EncodingProbe, delimiter_sniff, sample_text
from .reader import CsvReader

_INT = re.compile(r"[+-]?\d+")
_INT_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
_DEC = re.compile(r"[+-]?(?:\d+\.\d+|\.\d+)")
_DEC_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+\.\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)[eE][+-]?\d+")
_BOOL_WORDS = {"true", "false", "yes", "no", "t", "f", "y", "n"}
_NAME_RE = re.compile(r"[^A-Za-z0-9_]+")
MAX_CHOICES = 12


def _is_email(v: str) -> bool:
    try:
        EmailValidator()(v)
    except ValidationError:
        return False
    return True


def _is_url(v: str) -> bool:
    try:
        URLValidator(schemes=["http", "https"])(v)
    except ValidationError:
        return False
    return True


def _is_date(v: str) -> bool:
    try:
        date.fromisoformat(v)
    except ValueError:
        return False
    return len(v) == 10


def _is_datetime(v: str) -> bool:
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return len(v) > 10


def _field_name(header: str, taken: set[str]) -> str:
    name = _NAME_RE.sub("_", header.strip().lower()).strip("_") or "column"
    if name[0].isdigit():
        name = f"c_{name}"
    name = name[:60]
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _infer_column(values: list[str], rows: int) -> dict[str, Any]:
    present = [v for v in values if v.strip()]
    stripped = [v.strip() for v in present]
    field: dict[str, Any] = {"type": "string"}
    transforms: list[str] = []
    if any(v != s for v, s in zip(present, stripped, strict=True)):
        transforms.append("strip")
    if not present:
        return field
    lowered = {s.lower() for s in stripped}
    if lowered <= _BOOL_WORDS | {"1", "0"} and lowered & _BOOL_WORDS:
        field["type"] = "boolean"
    elif all(_INT.fullmatch(s) for s in stripped):
        field["type"] = "integer"
    elif all(_INT.fullmatch(s) or _INT_GROUPED.fullmatch(s) for s in stripped):
        field.update(type="integer", thousands_separator=",")
    elif all(_INT.fullmatch(s) or _DEC.fullmatch(s) for s in stripped):
        field["type"] = "decimal"
    elif all(any(p.fullmatch(s) for p in (_INT, _DEC, _INT_GROUPED, _DEC_GROUPED)) for s in stripped):
        field.update(type="decimal", thousands_separator=",")
    elif all(_INT.fullmatch(s) or _DEC.fullmatch(s) or _FLOAT.fullmatch(s) for s in stripped):
        field["type"] = "float"
    elif all(_is_date(s) for s in stripped):
        field["type"] = "date"
    elif all(_is_date(s) or _is_datetime(s) for s in stripped):
        field.update(type="datetime", default_timezone="UTC")
    elif all(_is_email(s) for s in stripped):
        field["type"] = "email"
    elif all(_is_url(s) for s in stripped):
        field["type"] = "url"
    else:
        distinct = Counter(stripped)
        folded = {s.lower() for s in distinct}
        if rows >= 20 and len(folded) <= MAX_CHOICES and len(folded) * 4 <= len(present):
            if len(folded) < len(distinct):
                transforms.append("lower")
                field["choices"] = sorted(folded)
            else:
                field["choices"] = sorted(distinct)
        longest = max(len(s) for s in stripped)
        field["max_length"] = max(64, 1 << (longest - 1).bit_length()) if longest else 64
    if transforms:
        field["transforms"] = transforms
    return field


def schema_infer(source: IO[bytes], *, slug: str, sample_rows: int = 10_000) -> dict[str, Any]:
    """Read up to ``sample_rows`` rows and propose a schema file (a dict).

    Types are the narrowest that every non-empty sampled value fits; a column
    is ``required`` when no sampled value is empty; low-cardinality text
    columns get ``choices``. The key is an ``id``-like column whose sampled
    values are unique, else the first such column.
    """
    head = source.read(1 << 20)
    probe = EncodingProbe()
    probe.feed(head)
    encoding, _ = probe.encoding()
    delimiter = delimiter_sniff(sample_text(head, encoding))
    source.seek(0)
    reader = CsvReader(source, encoding=encoding, delimiter=delimiter)
    header = reader.read_header()
    if header is None:
        raise ValidationError("The file is empty: there is no header row to infer a schema from.")
    columns: list[list[str]] = [[] for _ in header]
    rows = 0
    for row in islice(reader.rows(), sample_rows):
        if row.error or len(row.values) != len(header):
            continue
        rows += 1
        for i, v in enumerate(row.values):
            columns[i].append(v)
    taken: set[str] = set()
    fields: list[dict[str, Any]] = []
    for h, values in zip(header, columns, strict=True):
        name = _field_name(h, taken)
        spec: dict[str, Any] = {"name": name}
        if h != name:
            spec["source"] = h
        inferred = _infer_column(values, rows)
        spec["type"] = inferred.pop("type")
        spec["required"] = bool(values) and all(v.strip() for v in values)
        spec.update(inferred)
        spec["_unique"] = bool(values) and len(set(values)) == len(values) and spec["required"]
        fields.append(spec)
    unique = [f for f in fields if f.pop("_unique")]
    key = next((f for f in unique if f["name"] == "id" or f["name"].endswith("_id")), unique[0] if unique else None)
    if key is None:
        raise ValidationError("No column has unique, non-empty values in the sample; choose a key by hand.")
    return {
        "slug": slug,
        "name": slug.replace("-", " ").replace("_", " ").capitalize(),
        "key": [key["name"]],
        "delimiter": delimiter,
        "fields": fields,
    }


def slug_from_filename(name: str) -> str:
    return slugify(name.rsplit(".", 1)[0])[:64] or "dataset"
