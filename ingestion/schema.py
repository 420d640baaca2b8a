"""The dataset schema file: parsing, checking and normalising it.

The schema file is a public interface (people write it by hand, tests and
the API exchange it), so every mistake gets a message that names the field
and the key at fault.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import math
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.text import slugify

from .dialect import text_encoding
from .fieldtypes import FIELD_TYPES, field_type
from .fieldtypes.base import is_number

TRANSFORMS = ("strip", "lower", "upper", "title", "collapse_whitespace")
CONSTRAINT_KEYS = ("min", "max", "min_length", "max_length", "pattern", "choices", "unique")
COMMON_FIELD_KEYS = (
    "name",
    "type",
    "required",
    "source",
    "aliases",
    "transforms",
    "null_values",
    "description",
    "indexed",
)
DATASET_KEYS = (
    "slug",
    "name",
    "description",
    "key",
    "delimiter",
    "detect_delimiter",
    "encoding",
    "reject_threshold",
    "fields",
    "checks",
)
# Declared data-quality checks (docs/quality.md): what each kind measures and the keys it takes.
CHECK_KINDS = ("row_count", "null_share", "distinct_share", "min", "max", "mean", "freshness")
CHECK_SEVERITIES = ("warn", "error")
FIELD_CHECK_KINDS = ("null_share", "distinct_share", "min", "max", "mean")
ORDERED_CHECK_KINDS = ("min", "max", "mean")
SHARE_CHECK_KINDS = ("null_share", "distinct_share")
MAX_CHECKS = 100
MAX_NAME_LENGTH = 200  # Dataset.name
MAX_HEADER_LENGTH = 200  # SchemaField.source
# Limits on what a schema file may hold: generous for any real schema, and
# small enough that no value costs the database or an error message much.
MAX_SCHEMA_SIZE = 5 * 1024 * 1024  # bytes of schema-file text
MAX_FIELDS = 1000
MAX_TEXT_LENGTH = 10_000  # any string: descriptions, patterns, choices…
MAX_OBJECT_KEY_LENGTH = 200  # any key of a JSON object
MAX_LIST_ITEMS = 10_000  # choices, null_values, aliases…
MAX_DEPTH = 10  # a schema is 4 levels deep (schema, fields, a field, its choices)
MAX_MESSAGES = 20  # problems listed before "and N more"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a schema, normalised."""

    name: str
    type: str
    required: bool = False
    source: str = ""
    aliases: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()
    null_values: tuple[str, ...] = ()
    constraints: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def indexed(self) -> bool:
        """Whether record filters on this field get an index (``"indexed": true``)."""
        return bool(self.options.get("indexed"))

    @property
    def headers(self) -> tuple[str, ...]:
        """File headers that map to this field, most preferred first."""
        return (self.source or self.name, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.required:
            out["required"] = True
        if self.source:
            out["source"] = self.source
        if self.aliases:
            out["aliases"] = list(self.aliases)
        if self.transforms:
            out["transforms"] = list(self.transforms)
        if self.null_values:
            out["null_values"] = list(self.null_values)
        out.update(self.constraints)
        out.update(self.options)
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class CheckSpec:
    """One declared data-quality check of a schema file (``checks``), normalised.

    ``at_least`` / ``at_most`` bound what the check measures (a count, a
    share, or a field's min / max / mean: a number, or ISO text for a date or
    date-time field); ``hours`` is the freshness window.
    """

    kind: str
    severity: str = "warn"
    field: str = ""
    at_least: Any = None
    at_most: Any = None
    hours: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.field:
            out["field"] = self.field
        if self.at_least is not None:
            out["at_least"] = self.at_least
        if self.at_most is not None:
            out["at_most"] = self.at_most
        if self.hours is not None:
            out["hours"] = self.hours
        out["severity"] = self.severity
        return out


@dataclass(frozen=True)
class SchemaSpec:
    """A whole schema file, normalised."""

    slug: str
    name: str
    key: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    description: str = ""
    delimiter: str = ""
    reject_threshold: float | None = None
    # Load a file with the delimiter its header fits when the declared one does not.
    detect_delimiter: bool = False
    # The encoding every file of the dataset is read with (empty: UTF-8, or detected).
    encoding: str = ""
    # Data-quality checks on each run (not part of the fields: changing them makes no new version).
    checks: tuple[CheckSpec, ...] = ()

    def field_definitions(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.fields]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"slug": self.slug, "name": self.name}
        if self.description:
            out["description"] = self.description
        out["key"] = list(self.key)
        if self.delimiter:
            out["delimiter"] = self.delimiter
        if self.detect_delimiter:
            out["detect_delimiter"] = True
        if self.encoding:
            out["encoding"] = self.encoding
        if self.reject_threshold is not None:
            out["reject_threshold"] = self.reject_threshold
        out["fields"] = self.field_definitions()
        if self.checks:
            out["checks"] = [c.to_dict() for c in self.checks]
        return out

    def fields_checksum(self) -> str:
        """Identifies the field list, so an unchanged schema keeps its version."""
        payload = json.dumps({"key": list(self.key), "fields": self.field_definitions()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


class _Errors:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{where}: {message}")


_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _shown(value: Any, limit: int = 60) -> str:
    """A value quoted for a message, cut short: messages stay one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text_problem(text: str, limit: int) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    if _SURROGATE_RE.search(text):
        return "must not contain lone surrogates (\\ud800-\\udfff), which are not text"
    if len(text) > limit:
        return f"is {len(text)} characters long; the limit is {limit}"
    return None


def _content_problems(data: Any) -> list[str]:
    """What no part of a schema file may hold, each problem with its place (``fields[2].name``).

    NUL characters and lone surrogates (PostgreSQL stores neither), huge
    strings, lists and integers, non-finite numbers and deep nesting. Checked
    before anything else, so that no later message quotes such a value and
    nothing of it reaches the database. Walks the document without recursion.
    """
    problems: list[str] = []
    # (path, value, depth, anchor): the anchor is the path of the schema key holding the value,
    # where excessive nesting is reported.
    stack: list[tuple[str, Any, int, str]] = [("", data, 0, "")]
    while stack:
        path, value, depth, anchor = stack.pop()
        where = path or "schema"
        if isinstance(value, str):
            problem = _text_problem(value, MAX_TEXT_LENGTH)
            if problem:
                problems.append(f"{where}: {problem}")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                problems.append(f"{where}: is beyond the 64-bit integer range")
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(f"{where}: must be a finite number")
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                problems.append(f"{anchor}: is nested deeper than {MAX_DEPTH} levels")
                continue
            children: list[tuple[str, Any]] = []
            if isinstance(value, list):
                limit, noun = (MAX_FIELDS, "fields") if path == "fields" else (MAX_LIST_ITEMS, "items")
                if len(value) > limit:
                    problems.append(f"{where}: has {len(value)} {noun}; the limit is {limit}")
                    continue
                children = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
            else:
                for key, item in value.items():
                    problem = _text_problem(key, MAX_OBJECT_KEY_LENGTH) if isinstance(key, str) else None
                    if problem:
                        problems.append(f"{where}: a key {problem}")
                    elif _IDENTIFIER_RE.fullmatch(str(key)):
                        children.append((f"{path}.{key}" if path else str(key), item))
                    else:
                        children.append((f"{path}[{_shown(key)}]", item))
            stack.extend((p, item, depth + 1, p if depth < 3 else anchor) for p, item in reversed(children))
    return problems


def _string_list(value: Any, where: str, errors: _Errors) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add(where, "must be a list of strings")
        return ()
    return tuple(value)


def _parse_field(raw: Any, index: int, errors: _Errors) -> FieldSpec | None:
    where = f"fields[{index}]"
    if not isinstance(raw, dict):
        errors.add(where, "must be an object")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
        errors.add(where, "'name' must be a letter or underscore followed by letters, digits or underscores")
        return None
    where = f"field '{name}'"
    type_ = raw.get("type", "string")
    if not isinstance(type_, str) or type_ not in FIELD_TYPES:
        errors.add(where, f"unknown type {_shown(type_)} (expected one of {', '.join(FIELD_TYPES)})")
        return None
    kind = field_type(type_)
    allowed = set(COMMON_FIELD_KEYS) | set(CONSTRAINT_KEYS) | set(kind.options)
    for key in raw:
        if key not in allowed:
            errors.add(where, f"unknown key {_shown(key)} for a {type_} field")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        errors.add(where, "'required' must be true or false")
    source = raw.get("source", "")
    if not isinstance(source, str) or len(source) > MAX_HEADER_LENGTH:
        errors.add(where, f"'source' must be a string of at most {MAX_HEADER_LENGTH} characters")
        source = ""
    aliases = _string_list(raw.get("aliases", []), f"{where} aliases", errors)
    if any(len(a) > MAX_HEADER_LENGTH for a in aliases):
        errors.add(where, f"aliases must be at most {MAX_HEADER_LENGTH} characters long")
    transforms = _string_list(raw.get("transforms", []), f"{where} transforms", errors)
    for t in transforms:
        if t not in TRANSFORMS:
            errors.add(where, f"unknown transform {_shown(t)} (expected one of {', '.join(TRANSFORMS)})")
    null_values = _string_list(raw.get("null_values", []), f"{where} null_values", errors)

    constraints: dict[str, Any] = {}
    for key in ("min", "max"):
        if key in raw:
            value = raw[key]
            problem = kind.bound_problem(value) if kind.bound_problem is not None else None
            if problem:
                errors.add(where, f"'{key}' {problem}")
            elif not kind.ordered:
                errors.add(where, f"'{key}' applies to numbers, dates and datetimes; use min_length/max_length")
            constraints[key] = value
    for key in ("min_length", "max_length"):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                errors.add(where, f"'{key}' must be a non-negative integer")
            constraints[key] = value
    if "pattern" in raw:
        try:
            if not isinstance(raw["pattern"], str):
                raise TypeError("'pattern' must be a string")
            re.compile(raw["pattern"])
        except TypeError as exc:
            errors.add(where, str(exc))
        except re.error as exc:
            errors.add(where, f"'pattern' is not a valid regular expression: {exc}")
        constraints["pattern"] = raw["pattern"]
    if "choices" in raw:
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            errors.add(where, "'choices' must be a non-empty list")
        else:
            for choice in choices:
                if not kind.choice_fits(choice):
                    errors.add(where, f"'choices' value {_shown(choice)} is not a valid {type_}")
        constraints["choices"] = choices
    if "unique" in raw:
        if not isinstance(raw["unique"], bool):
            errors.add(where, "'unique' must be true or false")
        if raw["unique"]:
            constraints["unique"] = True

    options: dict[str, Any] = {}
    for key in kind.options:  # the options each type understands, on top of the common ones
        if key in raw:
            options[key] = raw[key]
    for key in ("thousands_separator", "decimal_separator"):
        if key in options and (not isinstance(options[key], str) or len(options[key]) != 1):
            errors.add(where, f"'{key}' must be a single character")
    if "default_timezone" in options and not isinstance(options["default_timezone"], str):
        errors.add(where, "'default_timezone' must be a string (a zone name such as 'Europe/Paris')")
    elif "default_timezone" in options:
        try:
            zoneinfo.ZoneInfo(str(options["default_timezone"]))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: names such as "Europe" are folders of the zone database.
            errors.add(where, f"unknown time zone {_shown(options['default_timezone'])}")
    if "formats" in options:
        _string_list(options["formats"], f"{where} formats", errors)
    if "indexed" in raw:
        # Kept with the options (stored as they are); false is the default and not kept.
        if not isinstance(raw["indexed"], bool):
            errors.add(where, "'indexed' must be true or false")
        elif raw["indexed"]:
            options["indexed"] = True
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.add(where, "'description' must be a string")
    return FieldSpec(
        name=name,
        type=str(type_),
        required=bool(required),
        source=source,
        aliases=aliases,
        transforms=transforms,
        null_values=null_values,
        constraints=constraints,
        options=options,
        description=description if isinstance(description, str) else "",
    )


def _beyond_int64(value: Any) -> bool:
    """Whether a float (``1e308``) or a numeric string (``"1e30"``) lies outside 64 bits.

    JSON integers are left to :func:`_content_problems`, which checks every one.
    """
    if isinstance(value, str):
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return False
        return number.is_finite() and not INT64_MIN <= number <= INT64_MAX
    return isinstance(value, float) and math.isfinite(value) and not INT64_MIN <= value <= INT64_MAX


def _integer_bound_problems(data: Any) -> list[str]:
    """An integer field's ``min``, ``max`` and ``choices`` beyond 64 bits, however written.

    A float bound such as ``1e308`` would otherwise be stored as a 309-digit integer that
    the content check refuses when the definition read back is sent again.
    """
    fields = data.get("fields") if isinstance(data, dict) else None
    if not isinstance(fields, list):
        return []
    problems: list[str] = []
    for i, raw in enumerate(fields):
        if not isinstance(raw, dict) or raw.get("type") != "integer":
            continue
        for key in ("min", "max"):
            if key in raw and _beyond_int64(raw[key]):
                problems.append(f"fields[{i}].{key}: is beyond the 64-bit integer range")
        choices = raw.get("choices")
        for j, choice in enumerate(choices if isinstance(choices, list) else []):
            if _beyond_int64(choice):
                problems.append(f"fields[{i}].choices[{j}]: is beyond the 64-bit integer range")
    return problems


def schema_parse(data: Any, *, stored: bool = False) -> SchemaSpec:
    """Check a schema file (already decoded from JSON) and normalise it.

    Raises ``ValidationError`` listing every problem found. ``stored``: the
    definition of a schema version, accepted when it was applied, perhaps by
    a release with looser limits; the content limits are not applied again,
    so that a stored schema always reads back.
    """
    errors = _Errors()
    if not isinstance(data, dict):
        raise ValidationError("The schema must be a JSON object.")
    problems = [] if stored else [*_content_problems(data), *_integer_bound_problems(data)]
    if problems:
        raise ValidationError(_capped(problems))
    for key in data:
        if key not in DATASET_KEYS:
            errors.add("schema", f"unknown key {_shown(key)}")
    slug = data.get("slug")
    if not isinstance(slug, str) or not slug or slugify(slug) != slug or len(slug) > 64:
        errors.add("schema", "'slug' must be lowercase letters, digits, hyphens or underscores (max 64)")
    name = data.get("name") or slug
    if data.get("name") is not None and not isinstance(data["name"], str):
        name = None  # false, 0 or [] is a mistake, not "use the slug"
    if not isinstance(data.get("description", ""), str):
        errors.add("schema", "'description' must be a string")
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        errors.add("schema", f"'name' must be a string of at most {MAX_NAME_LENGTH} characters")
    delimiter = data.get("delimiter", "")
    if not isinstance(delimiter, str) or len(delimiter) > 1 or delimiter in {'"', "\n", "\r"}:
        errors.add("schema", "'delimiter' must be one character other than a quote or newline")
        delimiter = ""
    detect_delimiter = data.get("detect_delimiter", False)
    if not isinstance(detect_delimiter, bool):
        errors.add("schema", "'detect_delimiter' must be true or false")
        detect_delimiter = False
    encoding = data.get("encoding", "")
    if not isinstance(encoding, str):
        errors.add("schema", "'encoding' must be the name of a text encoding, e.g. \"cp1251\"")
        encoding = ""
    elif encoding:
        try:
            encoding = text_encoding(encoding)
        except ValueError as exc:
            errors.add("schema", f"'encoding': {exc}")
            encoding = ""
    threshold = data.get("reject_threshold")
    if threshold is not None and (not is_number(threshold) or not 0 <= threshold <= 1):
        errors.add("schema", "'reject_threshold' must be a number between 0 and 1")
    raw_fields = data.get("fields")
    fields: list[FieldSpec] = []
    if not isinstance(raw_fields, list) or not raw_fields:
        errors.add("schema", "'fields' must be a non-empty list")
    else:
        for i, raw in enumerate(raw_fields):
            spec = _parse_field(raw, i, errors)
            if spec is not None:
                fields.append(spec)
    names = [f.name for f in fields]
    for n in sorted({n for n in names if names.count(n) > 1}):
        errors.add("schema", f"field {n!r} is defined more than once")
    if not stored:
        # Field names are the columns of the dataset's table (docs/sql.md), next to
        # its lineage columns, which start with "_"; SQLite compares names ignoring case.
        for n in names:
            if n.startswith("_"):
                errors.add(
                    f"field '{n}'", "names starting with '_' are kept for the lineage columns (_key, _last_run_id…)"
                )
        folded: dict[str, str] = {}
        for n in names:
            if n.casefold() in folded and folded[n.casefold()] != n:
                errors.add("schema", f"fields {folded[n.casefold()]!r} and {n!r} differ only in case")
            folded.setdefault(n.casefold(), n)
    headers: dict[str, str] = {}
    for f in fields:
        for h in f.headers:
            # Files are matched ignoring case and surrounding spaces, so are clashes.
            header = h.strip().casefold()
            if header in headers and headers[header] != f.name:
                errors.add("schema", f"header {h!r} maps to both {headers[header]!r} and {f.name!r}")
            headers[header] = f.name
    key = data.get("key")
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        errors.add("schema", "'key' must name at least one field")
        key = []
    by_name = {f.name: f for f in fields}
    for k in key:
        if k not in by_name:
            errors.add("schema", f"key field {_shown(k)} is not defined in 'fields'")
        elif not by_name[k].required:
            errors.add("schema", f"key field {k!r} must be required")
    checks = checks_parse(data.get("checks", []), fields, errors)
    if errors.messages:
        raise ValidationError(_capped(errors.messages))
    assert isinstance(slug, str) and isinstance(name, str)  # checked above, or an error was raised
    return SchemaSpec(
        slug=slug,
        name=name,
        description=data.get("description", "") if isinstance(data.get("description", ""), str) else "",
        key=tuple(key),
        fields=tuple(fields),
        delimiter=delimiter,
        detect_delimiter=detect_delimiter,
        encoding=encoding,
        reject_threshold=float(threshold) if threshold is not None else None,
        checks=checks,
    )


def _check_bound(value: Any, kind: str, spec: FieldSpec | None, where: str, key: str, errors: _Errors) -> Any:
    """A check's bound, checked against what the check measures; None when it is wrong (reported)."""
    if kind in ORDERED_CHECK_KINDS and spec is not None and spec.type in ("date", "datetime"):
        problem = field_type(spec.type).bound_problem
        if not isinstance(value, str) or (problem is not None and problem(value)):
            errors.add(where, f"'{key}' must be an ISO {spec.type} text for the {spec.type} field {spec.name!r}")
            return None
        return value
    if not is_number(value):
        errors.add(where, f"'{key}' must be a number, got {_shown(value)}")
        return None
    if kind in SHARE_CHECK_KINDS and not 0 <= value <= 1:
        errors.add(where, f"'{key}' is a share: it must be between 0 and 1, got {_shown(value)}")
        return None
    if kind == "row_count" and (value < 0 or value != int(value)):
        errors.add(where, f"'{key}' must be a whole number of rows, at least 0, got {_shown(value)}")
        return None
    return value


def checks_parse(raw: Any, fields: list[FieldSpec] | tuple[FieldSpec, ...], errors: _Errors) -> tuple[CheckSpec, ...]:
    """The ``checks`` block of a schema file, every problem reported with the check's place (``checks[1]``)."""
    if not isinstance(raw, list):
        errors.add("checks", "must be a list of checks (objects with a 'kind')")
        return ()
    if len(raw) > MAX_CHECKS:
        errors.add("checks", f"has {len(raw)} checks; the limit is {MAX_CHECKS}")
        return ()
    by_name = {f.name: f for f in fields}
    checks: list[CheckSpec] = []
    for i, item in enumerate(raw):
        where = f"checks[{i}]"
        if not isinstance(item, dict):
            errors.add(where, "must be an object with a 'kind'")
            continue
        kind = item.get("kind")
        if kind not in CHECK_KINDS:
            errors.add(where, f"unknown check kind {_shown(kind)} (expected one of {', '.join(CHECK_KINDS)})")
            continue
        where = f"{where} ({kind})"
        if kind == "freshness":
            allowed = {"kind", "severity", "hours"}
        else:
            allowed = {"kind", "severity", "at_least", "at_most", *(("field",) if kind in FIELD_CHECK_KINDS else ())}
        problems = len(errors.messages)
        for key in item:
            if key not in allowed:
                errors.add(where, f"unknown key {_shown(key)} (a {kind} check takes {', '.join(sorted(allowed))})")
        severity = item.get("severity", "warn")
        if severity not in CHECK_SEVERITIES:
            errors.add(where, f"'severity' must be 'warn' or 'error', got {_shown(severity)}")
        spec: FieldSpec | None = None
        name = item.get("field", "")
        if kind in FIELD_CHECK_KINDS:
            if not isinstance(name, str) or not name:
                errors.add(where, "'field' must name a field of the schema")
            elif name not in by_name:
                errors.add(where, f"unknown field {_shown(name)} (not in 'fields')")
            else:
                spec = by_name[name]
                if kind in ORDERED_CHECK_KINDS and spec.type not in (
                    "integer",
                    "decimal",
                    "float",
                    "date",
                    "datetime",
                ):
                    errors.add(where, f"applies to numbers, dates and date-times; {name!r} is a {spec.type} field")
                    spec = None
        hours: float | None = None
        at_least = at_most = None
        if kind == "freshness":
            hours = item.get("hours")
            if hours is None or not is_number(hours) or not 0 < hours <= 24 * 366:
                errors.add(where, "'hours' must be a number of hours above 0 (at most a year)")
                hours = None
            if severity == "error":
                errors.add(
                    where,
                    "'severity' must be 'warn': freshness is about the loads before this run, "
                    "which failing it cannot mend",
                )
        else:
            if "at_least" not in item and "at_most" not in item:
                errors.add(where, "needs a range: 'at_least', 'at_most' or both")
            if "at_least" in item:
                at_least = _check_bound(item["at_least"], kind, spec, where, "at_least", errors)
            if "at_most" in item:
                at_most = _check_bound(item["at_most"], kind, spec, where, "at_most", errors)
            if at_least is not None and at_most is not None and at_least > at_most:
                errors.add(where, f"bad range: 'at_least' ({_shown(at_least)}) is above 'at_most' ({_shown(at_most)})")
        if len(errors.messages) == problems:
            checks.append(
                CheckSpec(
                    kind=str(kind),
                    severity=str(severity),
                    field=name if isinstance(name, str) else "",
                    at_least=at_least,
                    at_most=at_most,
                    hours=float(hours) if hours is not None else None,
                )
            )
    return tuple(checks)


def checks_of_definition(definition: dict[str, Any]) -> tuple[CheckSpec, ...]:
    """The checks of a stored schema definition (read fresh: changing checks keeps the version)."""
    return schema_parse(definition, stored=True).checks


def _capped(messages: list[str]) -> list[str]:
    if len(messages) <= MAX_MESSAGES:
        return messages
    return [*messages[:MAX_MESSAGES], f"… and {len(messages) - MAX_MESSAGES} more problems"]


def schema_loads(text: str | bytes) -> SchemaSpec:
    """Parse schema-file text; invalid JSON becomes a ``ValidationError``."""
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
    if size > MAX_SCHEMA_SIZE:
        raise ValidationError(f"The schema file is larger than {MAX_SCHEMA_SIZE} bytes.")
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValidationError("The schema file is nested too deeply to be a schema.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The schema file is not valid JSON: {exc}") from None
    return schema_parse(data)
