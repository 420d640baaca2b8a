"""Proposing a schema file from a sample of a CSV file (``infer_schema``).

``schema_infer`` reads up to ``sample_rows`` rows and returns a
``SchemaInference``: the proposed schema file and, per column, what was
decided and why. The rules (docs/schema.md, "Inferring a schema"):

- **Type**: the narrowest type that nearly all (``TYPE_SHARE``, 98 %) of a
  column's non-empty values have, judged by the pipeline's own converters;
  the others are *outliers*, listed with their lines, and the proposed
  schema rejects them when the file is loaded. Values with leading zeros
  (``08123``) are codes: such a column stays text.
- **Nulls**: common null tokens (``N/A``, ``NA``, ``-``, ``null``, ``NULL``,
  ``none``…) seen in a column become its ``null_values``.
- **Key**: a column with no empty value whose values stay distinct *after*
  conversion (``2024-01-01T00:00:00Z`` and ``2024-01-01T01:00:00+01:00``
  are one instant, so one key).
- Nothing is pinned that belongs to one file or one sample: no delimiter,
  no ``max_length``; ``choices`` are only suggested in the report.

What each type contributes (the candidates and their options, the names of
its values in reports, whether it makes a key) comes from the field-type
registry (``ingestion.fieldtypes``). A field is converted exactly as the
pipeline converts it, nulls and transforms included, by the pipeline's
``compile_field``, which lives in ``processing`` (above this app): the
caller passes it in as ``converter_for``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.utils.text import slugify

from .dialect import (
    SNIFF_BYTES,
    EncodingGuess,
    EncodingProbe,
    binary_sniff,
    delimiter_sniff,
    encoding_text,
    encoding_unsure_message,
    sample_text,
    text_encoding,
)
from .fieldtypes import FIELD_TYPES, field_type
from .models import FieldType
from .reader import CsvReader, CsvStructureError
from .schema import DATASET_KEYS, FieldSpec

# A column gets a type when at least this share of its non-empty values has it.
TYPE_SHARE = 0.98
# Spellings of "no value" proposed as null_values when seen (compared after stripping spaces).
NULL_TOKENS = frozenset({"N/A", "n/a", "NA", "-", "null", "NULL", "Null", "none", "None", "NONE"})
# Choices are suggested for text columns with at most this many distinct values…
CHOICES_MAX_DISTINCT = 20
# …over at least this many non-empty rows, each value seen at least this many times.
CHOICES_MIN_ROWS = 200
CHOICES_MIN_COUNT = 5
# Outliers listed per column (all are counted).
MAX_LISTED_OUTLIERS = 20

ConverterFactory = Callable[[FieldSpec], Callable[[str], Any]]

_NAME_RE = re.compile(r"[^A-Za-z0-9_]+")
# More than one digit and a leading 0: a code such as a ZIP or product code, not a number.
_LEADING_ZERO_RE = re.compile(r"[+-]?0\d[\d,]*(?:\.\d*)?")
_BOOL_DIGITS = frozenset({"0", "1"})
# Candidate types and the options tried, narrowest first (each type's
# ``infer_rank``): on equal outliers the earlier one wins.
_CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = tuple(
    (t.name, dict(options))
    for t in sorted((t for t in FIELD_TYPES.values() if t.infer_rank is not None), key=lambda t: t.infer_rank or 0)
    for options in t.infer_options
)


@dataclass(frozen=True)
class Outlier:
    """A value that does not have its column's type: the row is rejected when the file is loaded."""

    line: int
    value: str
    reason: str


@dataclass(frozen=True)
class ColumnReport:
    """What was decided for one column of the file, and why."""

    position: int  # 1-based, as people count columns
    header: str
    name: str  # the proposed field ("" when the column is left out)
    type: str
    why: str
    required: bool = False
    transforms: tuple[str, ...] = ()
    null_values: tuple[str, ...] = ()  # proposed (null tokens seen in the column)
    null_tokens_seen: dict[str, int] = field(default_factory=dict)  # token -> count, proposed or not
    empty: int = 0  # empty values in the sample
    outliers: tuple[Outlier, ...] = ()  # the first MAX_LISTED_OUTLIERS
    outlier_count: int = 0
    key_candidate: bool = False
    key_note: str = ""  # why the column is, or is not, a key candidate
    suggested_choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemaInference:
    """A proposed schema file (``schema``, ready for ``schema_parse``) and the report behind it."""

    schema: dict[str, Any]
    columns: tuple[ColumnReport, ...]
    rows_sampled: int
    encoding: str
    encoding_text: str  # how the encoding was decided, as uploads show it
    delimiter: str  # as detected in this file; not written into the schema
    key: tuple[str, ...]
    skipped_lines: tuple[int, ...] = ()  # unreadable rows or rows with the wrong number of values
    notes: tuple[str, ...] = ()

    def report(self) -> dict[str, Any]:
        """The report as JSON-ready data (the ``report`` of ``infer_schema --json``)."""
        return {
            "rows_sampled": self.rows_sampled,
            "encoding": self.encoding,
            "encoding_text": self.encoding_text,
            "delimiter_detected": self.delimiter,
            "key": list(self.key),
            "key_candidates": [c.name for c in self.columns if c.key_candidate],
            "skipped_lines": list(self.skipped_lines),
            "notes": list(self.notes),
            "columns": [asdict(c) for c in self.columns],
        }

    def summary(self) -> list[str]:
        """A short human report: one line per column, then the key and the suggestions."""
        lines = [
            f"Sampled {self.rows_sampled} row{'s' if self.rows_sampled != 1 else ''} ({self.encoding_text}, "
            f"delimiter {self.delimiter!r} detected; not written into the schema, each file is detected)."
        ]
        width = max((len(c.name) for c in self.columns), default=0)
        width = max(width, len("(no header)")) if any(not c.name for c in self.columns) else width
        for c in self.columns:
            flags = " ".join(f for f in ("required" if c.required else "", "key" if c.name in self.key else "") if f)
            lines.append(f"  {c.name or '(no header)':<{width}}  {c.type:<8}  {flags:<12}  {c.why}")
            if c.null_values:
                lines.append(f"  {'':<{width}}  null values: {', '.join(c.null_values)}")
            if c.outlier_count:
                shown = ", ".join(str(o.line) for o in c.outliers)
                more = f" and {c.outlier_count - len(c.outliers)} more" if c.outlier_count > len(c.outliers) else ""
                lines.append(f"  {'':<{width}}  rejected when loaded: lines {shown}{more}")
        candidates = [c.name for c in self.columns if c.key_candidate]
        lines.append(f"Key: {', '.join(self.key)} (candidates: {', '.join(candidates)})")
        for c in self.columns:
            if c.key_note and not c.key_candidate and c.required and c.outlier_count == 0:
                lines.append(f"  not a key: {c.name}: {c.key_note}")
        for c in self.columns:
            if c.suggested_choices:
                lines.append(
                    f"Suggested choices for {c.name} (not in the schema): {', '.join(map(repr, c.suggested_choices))}"
                )
        lines.extend(self.notes)
        return lines


def _text(value: str, limit: int = 200) -> str:
    """A raw value as it may appear in the report: undecodable bytes as escapes, cut short."""
    value = value if len(value) <= limit else value[:limit] + "…"
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


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


def _norm_header(header: str) -> str:
    # As the pipeline matches headers to fields: case and surrounding spaces aside.
    return header.strip().lstrip("\ufeff").casefold()


def _duplicate_headers(header: list[str]) -> list[str]:
    positions: dict[str, list[int]] = {}
    for i, h in enumerate(header):
        if _norm_header(h):
            positions.setdefault(_norm_header(h), []).append(i + 1)
    problems = []
    for n in positions.values():
        if len(n) > 1:
            listed = ", ".join(map(str, n[:-1])) + f" and {n[-1]}"
            both = "both" if len(n) == 2 else "all"
            problems.append(f"columns {listed} are {both} named {header[n[0] - 1].strip()!r}")
    return problems


@dataclass
class _Trial:
    """One candidate type tried on a column's values, each distinct value converted once."""

    type: str
    options: dict[str, Any]
    convert: Callable[[str], Any]
    # What the converter accepts, narrowed to what a person would call a value of the type.
    fits: Callable[[str], bool]
    outliers: list[Outlier] = field(default_factory=list)  # values the converter refuses: rejected on load
    unusual: int = 0  # values it accepts but people would not write so (12.0 for a whole number)
    results: dict[str, tuple[str, bool, Any]] = field(default_factory=dict)  # value -> (refusal, usual, converted)

    def judge(self, line: int, value: str) -> None:
        if value not in self.results:
            try:
                self.results[value] = ("", self.fits(value), self.convert(value))
            except ValueError as exc:  # the pipeline's FieldError
                self.results[value] = (str(exc), False, None)
        refusal, usual, _ = self.results[value]
        if refusal:
            self.outliers.append(Outlier(line, _text(value), refusal))
        elif not usual:
            self.unusual += 1

    @property
    def misfits(self) -> int:
        return len(self.outliers) + self.unusual


def _choose_type(present: list[tuple[int, str]], converter_for: ConverterFactory, codes: bool) -> _Trial | None:
    """The candidate with the fewest misfits among those fitting ``TYPE_SHARE`` of the values."""
    allowed = len(present) - _needed(len(present))
    eligible = []
    for type_, options in _CANDIDATES:
        kind = field_type(type_)
        if codes and kind.numeric:
            continue
        if type_ == FieldType.BOOLEAN and all(v in _BOOL_DIGITS for _, v in present):
            continue  # 0 and 1 alone are numbers
        trial = _Trial(
            type_, dict(options), converter_for(FieldSpec(name="value", type=type_, options=options)), kind.infer_fits
        )
        for line, value in present:
            trial.judge(line, value)
            if trial.misfits > allowed:
                break
        else:
            eligible.append(trial)
            if not trial.misfits:
                break  # nothing later can do better
    return min(eligible, key=lambda t: t.misfits, default=None)  # min keeps the narrowest on ties


def _needed(n: int) -> int:
    """How many of ``n`` values must have a type for the column to get it (``TYPE_SHARE``, rounded up)."""
    return -(-n * round(TYPE_SHARE * 100) // 100)


def _null_tokens_proposed(tokens: Counter[str], type_: str, present: list[tuple[int, str]]) -> tuple[str, ...]:
    proposed = []
    for token in sorted(tokens):
        # In a text column of codes of the same shape ("US", "FR", "NA"), "NA" is Namibia, not "no value".
        if (
            type_ == FieldType.STRING
            and present
            and all(len(v) == len(token) and v.isalpha() and v.isupper() for _, v in present)
        ):
            continue
        proposed.append(token)
    return tuple(proposed)


def _key_check(values: list[tuple[int, str]], type_: str, converted: Callable[[str], Any]) -> tuple[bool, str]:
    """Whether a column's values are distinct once converted as the pipeline converts them."""
    kind = field_type(type_)
    if not kind.good_key:
        return False, f"{type_} values make a poor key"
    raw_seen: dict[str, int] = {}
    converted_seen: dict[Any, tuple[int, str]] = {}
    for line, raw in values:
        if raw in raw_seen:
            return False, f"values repeat (line {line} repeats line {raw_seen[raw]})"
        raw_seen[raw] = line
        value = converted(raw)
        # Keys are compared as the pipeline compares them: decimals as numbers ("1.5" and "1.50" are one key).
        canonical = kind.key_text(value)
        if canonical in converted_seen:
            first_line, first_raw = converted_seen[canonical]
            return False, (
                f"not unique once converted: {raw!r} (line {line}) and {first_raw!r} (line {first_line}) "
                f"are both {value!r}"
            )
        converted_seen[canonical] = (line, raw)
    return True, "distinct in the sample, also once converted"


def _infer_column(
    position: int,
    header: str,
    name: str,
    values: list[tuple[int, str]],
    converter_for: ConverterFactory,
) -> tuple[ColumnReport, FieldSpec]:
    empty = 0
    tokens: Counter[str] = Counter()
    token_values: list[tuple[int, str]] = []
    present: list[tuple[int, str]] = []
    padded = False
    for line, raw in values:
        stripped = raw.strip()
        padded = padded or (stripped != raw and bool(stripped))
        if not stripped:
            empty += 1
        elif stripped in NULL_TOKENS:
            tokens[stripped] += 1
            token_values.append((line, stripped))
        else:
            present.append((line, stripped))
    transforms = ("strip",) if padded else ()
    code = next(((line, v) for line, v in present if _LEADING_ZERO_RE.fullmatch(v)), None)
    trial = _choose_type(present, converter_for, codes=code is not None) if present else None
    outliers: list[Outlier] = []
    options: dict[str, Any] = {}
    type_: str
    null_values = _null_tokens_proposed(tokens, str(trial.type if trial is not None else FieldType.STRING), present)
    # Tokens not proposed as nulls ("NA" among country codes) are values like the others.
    kept = [(line, v) for line, v in token_values if v not in null_values]
    counted = len(present) + len(kept)
    if not present:
        type_, why = FieldType.STRING, "no values in the sample"
    elif trial is None:
        type_ = FieldType.STRING
        if code is not None:
            why = f"leading zeros ({code[1]!r}, line {code[0]}): codes, kept as text"
        else:
            why = f"text: no type fits {round(TYPE_SHARE * 100)}% of the {counted} values"
    else:
        type_, options, outliers = trial.type, trial.options, trial.outliers
        noun = field_type(type_).infer_noun
        if outliers:
            share = (len(present) - len(outliers)) / len(present)
            why = (
                f"{len(present) - len(outliers)} of {len(present)} values ({share:.1%}) are {noun}; "
                f"{len(outliers)} {'is' if len(outliers) == 1 else 'are'} not"
            )
        else:
            why = f"all {counted} values are {noun}"
        if options.get("thousands_separator"):
            why += ", with ',' between thousands"
    if padded:
        why += "; surrounding spaces are stripped"
    present += kept
    required = bool(values) and empty == 0 and not any(t in null_values for t in tokens)
    spec = FieldSpec(
        name=name,
        type=str(type_),
        required=required,
        source=header if header != name else "",
        transforms=transforms,
        null_values=null_values,
        options=options,
    )
    key_candidate, key_note = False, ""
    if required and not outliers:
        # The trial's converter is the pipeline's for this type and options; the strip transform
        # it did not apply was applied to the values it was given.
        results = trial.results if trial is not None else {}
        strip = bool(transforms)

        def converted(raw: str) -> Any:
            value = raw.strip() if strip else raw
            return results[value][2] if trial is not None else value

        key_candidate, key_note = _key_check(values, str(type_), converted)
    elif outliers:
        key_note = "has outliers"
    else:
        key_note = "has empty values" if empty else "has null values"
    suggested: tuple[str, ...] = ()
    if type_ == FieldType.STRING and len(present) >= CHOICES_MIN_ROWS:
        counts = Counter(v for _, v in present)
        if len(counts) <= CHOICES_MAX_DISTINCT and min(counts.values()) >= CHOICES_MIN_COUNT:
            suggested = tuple(_text(v) for v in sorted(counts))
    report = ColumnReport(
        position=position,
        header=header,
        name=name,
        type=str(type_),
        why=why,
        required=required,
        transforms=transforms,
        null_values=null_values,
        null_tokens_seen=dict(sorted(tokens.items())),
        empty=empty,
        outliers=tuple(outliers[:MAX_LISTED_OUTLIERS]),
        outlier_count=len(outliers),
        key_candidate=key_candidate,
        key_note=key_note,
        suggested_choices=suggested,
    )
    return report, spec


class EncodingUndecided(ValidationError):
    """The file's encoding could not be decided; ``candidates`` is what it could be, likeliest first."""

    def __init__(self, candidates: tuple[str, ...]) -> None:
        super().__init__(encoding_unsure_message(candidates, "Give it with --encoding."))
        self.candidates = candidates


def encoding_decide(source: IO[bytes], *, given: str | None = None) -> tuple[EncodingGuess, bytes]:
    """Decide a file's encoding as uploads do, streaming it once; returns the guess and the first MB.

    Refuses a file that is not text with the uploads' words ("This is not a
    text CSV file (looks like a ZIP archive…)"), and a file whose encoding
    cannot be decided with ``EncodingUndecided``. ``given`` wins, as an
    encoding given with an upload does. The source is rewound.
    """
    if given:
        try:
            given = text_encoding(given)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    probe = EncodingProbe()
    sniffed = False
    while chunk := source.read(1 << 20):
        probe.feed(chunk)
        if not sniffed and len(probe.sample) >= SNIFF_BYTES:
            sniffed = True
            if problem := binary_sniff(bytes(probe.sample[:SNIFF_BYTES]), encoding=given):
                raise ValidationError(f"This is {problem}.")
    if not sniffed and (problem := binary_sniff(bytes(probe.sample), encoding=given)):
        raise ValidationError(f"This is {problem}.")
    probe.finish()
    source.seek(0)
    guess = EncodingGuess(given, "given") if given else probe.guess()
    if guess.source == "unsure":
        raise EncodingUndecided(guess.candidates)
    return guess, bytes(probe.sample)


def schema_infer(
    *,
    source: IO[bytes],
    slug: str,
    converter_for: ConverterFactory,
    sample_rows: int = 10_000,
    encoding: str | None = None,
) -> SchemaInference:
    """Read up to ``sample_rows`` rows of a CSV file and propose a schema, with the report behind it.

    ``converter_for`` is the pipeline's ``compile_field``. The encoding is
    ``encoding`` when given, else decided as for uploads (``encoding_decide``).
    Raises ``ValidationError`` for a file that is not text or whose encoding
    cannot be decided (``EncodingUndecided``), a file without a header, with
    duplicate column names (such a file cannot be loaded), or without any
    column fit to be the key.
    """
    guess, head = encoding_decide(source, given=encoding)
    encoding = guess.encoding
    delimiter = delimiter_sniff(sample_text(head, encoding))
    reader = CsvReader(source, encoding=encoding, delimiter=delimiter)
    try:
        header = reader.read_header()
    except CsvStructureError as exc:
        raise ValidationError(f"The file cannot be read: {exc}.") from None
    if header is None:
        raise ValidationError("The file is empty: there is no header row to infer a schema from.")
    duplicates = _duplicate_headers(header)
    if duplicates:
        raise ValidationError(
            [f"{d}; a file with two columns of one name cannot be loaded, rename one" for d in duplicates]
        )
    columns: list[list[tuple[int, str]]] = [[] for _ in header]
    rows = 0
    skipped: list[int] = []
    for row in islice(reader.rows(), sample_rows):
        if row.error or len(row.values) != len(header):
            skipped.append(row.line)
            continue
        rows += 1
        for i, v in enumerate(row.values):
            columns[i].append((row.line, v))
    taken: set[str] = set()
    reports: list[ColumnReport] = []
    specs: list[FieldSpec] = []
    notes: list[str] = []
    for i, (h, values) in enumerate(zip(header, columns, strict=True)):
        if not h.strip():
            why = "no header: left out, since files are matched to fields by header"
            reports.append(ColumnReport(position=i + 1, header=h, name="", type="", why=why))
            continue
        report, spec = _infer_column(i + 1, h, _field_name(h, taken), values, converter_for)
        reports.append(report)
        specs.append(spec)
    if skipped:
        shown = ", ".join(map(str, skipped[:MAX_LISTED_OUTLIERS]))
        notes.append(
            f"{len(skipped)} row{'s' if len(skipped) != 1 else ''} skipped, unreadable or with a number of values "
            f"other than the header's (rejected when loaded): lines {shown}"
        )
    candidates = [r for r in reports if r.key_candidate]
    key = next(
        (r for r in candidates if r.name == "id" or r.name.endswith("_id")), candidates[0] if candidates else None
    )
    if key is None:
        why_not = "; ".join(f"{r.name}: {r.key_note}" for r in reports if r.name and r.key_note)
        raise ValidationError(
            f"No column can be the key: none has distinct, non-empty values in the sample ({why_not}). "
            "Choose a key by hand."
        )
    schema: dict[str, Any] = {
        "slug": slug,
        "name": slug.replace("-", " ").replace("_", " ").capitalize(),
        "key": [key.name],
    }
    if "detect_delimiter" in DATASET_KEYS:
        # No delimiter is pinned from the sample, and a file written with another one is still read.
        schema["detect_delimiter"] = True
    schema["fields"] = [s.to_dict() for s in specs]
    return SchemaInference(
        schema=schema,
        columns=tuple(reports),
        rows_sampled=rows,
        encoding=encoding,
        encoding_text=encoding_text(guess.encoding, guess.source, guess.confidence, guess.candidates),
        delimiter=delimiter,
        key=(key.name,),
        skipped_lines=tuple(skipped[:MAX_LISTED_OUTLIERS]),
        notes=tuple(notes),
    )


def slug_from_filename(name: str) -> str:
    return slugify(name.rsplit(".", 1)[0])[:64] or "dataset"
