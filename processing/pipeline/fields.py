"""Field converters: one small compiled function per schema field.

A schema is compiled once per run into one function per field, so the
per-row work is a loop over plain callables. Every function takes the raw
string and returns the clean value or raises ``FieldError`` with a message
for people.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator

from ingestion.models import FieldType
from ingestion.schema import FieldSpec

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
MAX_DECIMAL_DIGITS = 40
TRUE_WORDS = frozenset({"true", "yes", "1", "t", "y"})
FALSE_WORDS = frozenset({"false", "no", "0", "f", "n"})
_INT_RE = re.compile(r"[+-]?\d+(?:\.0*)?", re.ASCII)
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_FLOAT_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_CANONICAL_DECIMAL_RE = re.compile(r"-?(?:[1-9]\d*|0)(?:\.\d+)?", re.ASCII)
# A strict subset of what Django's EmailValidator accepts, checked first
# because the full validator costs ~10 µs a value.
_SIMPLE_EMAIL_RE = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
    re.ASCII,
)


class FieldError(ValueError):
    """A value broke a rule; the message is shown to people as is."""


Converter = Callable[[str], Any]

_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "collapse_whitespace": lambda v: " ".join(v.split()),
}


def _grouping_re(sep: str, point: str) -> re.Pattern[str]:
    s, p = re.escape(sep), re.escape(point)
    return re.compile(rf"[+-]?\d{{1,3}}(?:{s}\d{{3}})+(?:{p}\d*)?", re.ASCII)


def _number_prep(spec: FieldSpec) -> Callable[[str], str]:
    """Strip spaces, check and remove thousands separators, normalise the point."""
    sep = spec.options.get("thousands_separator", "")
    point = spec.options.get("decimal_separator", ".")
    grouping = _grouping_re(sep, point) if sep else None

    def prep(value: str) -> str:
        value = value.strip()
        if grouping is not None and sep in value:
            if not grouping.fullmatch(value):
                raise FieldError(f"misplaced thousands separator {sep!r} in {value!r}")
            value = value.replace(sep, "")
        if point != ".":
            if "." in value:
                # With a decimal comma, "1.500" most likely means 1500: refuse to guess.
                raise FieldError(f"{value!r} has a '.' but the decimal separator is {point!r}")
            value = value.replace(point, ".")
        return value

    return prep


def _parse_integer(spec: FieldSpec) -> Converter:
    prep = _number_prep(spec)

    def parse(value: str) -> int:
        if value.isascii() and value.isdigit() and len(value) < 19:
            return int(value)  # the common case, without the general checks
        v = prep(value)
        if not _INT_RE.fullmatch(v):
            raise FieldError(f"{value!r} is not a whole number")
        whole = v.split(".", 1)[0]
        if len(whole.lstrip("+-").lstrip("0")) > 19:
            raise FieldError(f"{value!r} is out of range for a 64-bit integer")
        number = int(whole)
        if not INT_MIN <= number <= INT_MAX:
            raise FieldError(f"{value!r} is out of range for a 64-bit integer")
        return number

    return parse


def _parse_decimal(spec: FieldSpec) -> Converter:
    prep = _number_prep(spec)

    def parse(value: str) -> str:
        v = prep(value)
        if not _DECIMAL_RE.fullmatch(v):
            raise FieldError(f"{value!r} is not a decimal number")
        # The pattern allows only a sign, digits and one point.
        if len(v) - (v[0] in "+-") - ("." in v) > MAX_DECIMAL_DIGITS:
            raise FieldError(f"{value!r} has more than {MAX_DECIMAL_DIGITS} digits")
        # Decimals are kept as canonical strings so no precision is lost.
        if _CANONICAL_DECIMAL_RE.fullmatch(v):
            return v  # already what format(Decimal(v), "f") would give
        return format(Decimal(v), "f")

    return parse


def _parse_float(spec: FieldSpec) -> Converter:
    prep = _number_prep(spec)

    def parse(value: str) -> float:
        v = prep(value)
        if not _FLOAT_RE.fullmatch(v):
            raise FieldError(f"{value!r} is not a number")
        number = float(v)
        if number in (float("inf"), float("-inf")):
            raise FieldError(f"{value!r} is too large")
        return number

    return parse


def _parse_boolean(spec: FieldSpec) -> Converter:
    def parse(value: str) -> bool:
        v = value.strip().lower()
        if v in TRUE_WORDS:
            return True
        if v in FALSE_WORDS:
            return False
        raise FieldError(f"{value!r} is not a boolean (use true/false, yes/no, 1/0, t/f, y/n)")

    return parse


def _parse_date(spec: FieldSpec) -> Converter:
    formats = tuple(spec.options.get("formats", ()))

    def parse(value: str) -> str:
        v = value.strip()
        try:
            return date.fromisoformat(v).isoformat()
        except ValueError:
            pass
        for fmt in formats:
            try:
                return datetime.strptime(v, fmt).date().isoformat()
            except ValueError:
                continue
        raise FieldError(
            f"{value!r} is not a date (expected YYYY-MM-DD{' or ' + ', '.join(formats) if formats else ''})"
        )

    return parse


def _utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with a fixed 6-digit fraction, so text order is time order."""
    offset = moment.utcoffset()
    if offset:
        moment -= offset  # wall-clock arithmetic: the UTC time, still labelled with the old offset
    # "YYYY-MM-DDTHH:MM:SS.ffffff" is 26 characters; the offset after it is dropped.
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def _parse_datetime(spec: FieldSpec) -> Converter:
    formats = tuple(spec.options.get("formats", ()))
    zone = zoneinfo.ZoneInfo(spec.options.get("default_timezone", "UTC"))

    def parse(value: str) -> str:
        v = value.strip()
        moment: datetime | None = None
        try:
            moment = datetime.fromisoformat(v)
        except ValueError:
            for fmt in formats:
                try:
                    moment = datetime.strptime(v, fmt)
                    break
                except ValueError:
                    continue
        if moment is None:
            raise FieldError(f"{value!r} is not an ISO 8601 date-time")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        try:
            return _utc_text(moment)
        except OverflowError:
            raise FieldError(f"{value!r} is out of range once converted to UTC") from None

    return parse


class _EmailValidator(EmailValidator):
    """Django's email validator, remembering its verdict on each domain.

    A file's addresses share few domains, and the domain pattern is the
    costly part for an internationalised one (``bücher.example``). The
    verdict is a pure function of the domain, so ``__call__`` is Django's
    own, unchanged; at most ``MEMO_SIZE`` domains are remembered.
    """

    def __init__(self) -> None:
        super().__init__()
        # The class holds its patterns as lazy objects: a proxy call per use.
        self.user_regex = re.compile(self.user_regex.pattern, self.user_regex.flags)
        self.validate_domain_part = functools.lru_cache(maxsize=MEMO_SIZE)(super().validate_domain_part)  # type: ignore[method-assign]


def _parse_email(spec: FieldSpec) -> Converter:
    validator = _EmailValidator()

    def parse(value: str) -> str:
        if len(value) <= 254 and _SIMPLE_EMAIL_RE.fullmatch(value) and value.index("@") <= 64:
            return value
        try:
            validator(value)
        except ValidationError:
            raise FieldError(f"{value!r} is not a valid email address") from None
        return value

    return parse


def _parse_url(spec: FieldSpec) -> Converter:
    validator = URLValidator(schemes=["http", "https"])

    def parse(value: str) -> str:
        try:
            validator(value)
        except ValidationError:
            raise FieldError(f"{value!r} is not a valid http(s) URL") from None
        return value

    return parse


_PARSERS: dict[str, Callable[[FieldSpec], Converter]] = {
    FieldType.STRING: lambda spec: str,
    FieldType.INTEGER: _parse_integer,
    FieldType.DECIMAL: _parse_decimal,
    FieldType.FLOAT: _parse_float,
    FieldType.BOOLEAN: _parse_boolean,
    FieldType.DATE: _parse_date,
    FieldType.DATETIME: _parse_datetime,
    FieldType.EMAIL: _parse_email,
    FieldType.URL: _parse_url,
}


def _bound(spec: FieldSpec, raw: Any) -> Any:
    """Turn a schema's min/max into a value comparable with parsed values."""
    if spec.type == FieldType.DECIMAL:
        return Decimal(str(raw))
    if spec.type == FieldType.DATE:
        return date.fromisoformat(raw).isoformat()
    if spec.type == FieldType.DATETIME:
        moment = datetime.fromisoformat(raw)
        zone = zoneinfo.ZoneInfo(spec.options.get("default_timezone", "UTC"))
        return moment if moment.tzinfo else moment.replace(tzinfo=zone)
    return raw


def _comparable(spec: FieldSpec) -> Callable[[Any], Any]:
    """Parsed decimals and datetimes are text; compare them as what they mean."""
    if spec.type == FieldType.DECIMAL:
        return Decimal
    if spec.type == FieldType.DATETIME:
        return datetime.fromisoformat
    return lambda v: v


def _choice_text(choice: Any) -> str:
    if isinstance(choice, bool):
        return "true" if choice else "false"
    return str(choice)


def _checks(spec: FieldSpec) -> list[Callable[[Any], str | None]]:
    """Constraint checks on the parsed value; each returns a message or None."""
    c = spec.constraints
    checks: list[Callable[[Any], str | None]] = []
    as_number = _comparable(spec)
    if "min" in c:
        low = _bound(spec, c["min"])
        checks.append(lambda v: f"must be at least {c['min']}" if as_number(v) < low else None)
    if "max" in c:
        high = _bound(spec, c["max"])
        checks.append(lambda v: f"must be at most {c['max']}" if as_number(v) > high else None)
    if "min_length" in c:
        n = c["min_length"]
        checks.append(lambda v: f"must be at least {n} characters long" if len(str(v)) < n else None)
    if "max_length" in c:
        n = c["max_length"]
        checks.append(lambda v: f"must be at most {n} characters long (got {len(str(v))})" if len(str(v)) > n else None)
    if "pattern" in c:
        pattern = re.compile(c["pattern"])
        checks.append(lambda v: None if pattern.fullmatch(str(v)) else f"{v!r} does not match {c['pattern']!r}")
    if "choices" in c:
        allowed = frozenset(str(x) for x in c["choices"]) if spec.type == FieldType.STRING else None
        choices = c["choices"]
        if allowed is not None:
            checks.append(lambda v: None if v in allowed else f"{v!r} is not one of {', '.join(map(str, choices))}")
        else:
            # Compare as what the values mean: "1.50" is the choice 1.5.
            parse_choice = _PARSERS[spec.type](spec)
            parsed_choices = frozenset(as_number(parse_choice(_choice_text(x))) for x in choices)
            checks.append(
                lambda v: (
                    None if as_number(v) in parsed_choices else f"{v!r} is not one of {', '.join(map(str, choices))}"
                )
            )
    return checks


def _fused(steps: Sequence[Callable[[str], str]]) -> Callable[[str], str] | None:
    """One function applying the transforms in order (None when there are none)."""
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    first, *rest = steps

    def run(value: str) -> str:
        value = first(value)
        for step in rest:
            value = step(value)
        return value

    return run


def compile_field(spec: FieldSpec) -> Converter:
    """Build the function that turns one raw value into a clean value.

    Runs once per value, so what a field does not need (transforms, a parser
    for text, constraint checks) is left out rather than looped over.
    """
    transform = _fused([_TRANSFORMS[t] for t in spec.transforms])
    nulls = frozenset(("", *spec.null_values))
    parse = None if spec.type == FieldType.STRING else _PARSERS[spec.type](spec)
    checks = tuple(_checks(spec)) or None
    required = spec.required
    blank_is_null = spec.type != FieldType.STRING

    def null() -> None:
        if required:
            raise FieldError("this field is required")
        return None

    def convert(value: str) -> Any:
        # null_values match the value as written or after the transforms;
        # for non-text types spaces alone also mean "no value".
        if value in nulls:
            return null()
        if transform is not None:
            value = transform(value)
            if value in nulls:
                return null()
        if blank_is_null and value.isspace():
            return null()
        clean = value if parse is None else parse(value)
        if checks is not None:
            for check in checks:
                message = check(clean)
                if message:
                    raise FieldError(message)
        return clean

    return convert


# Distinct raw values remembered per field; past it the memory starts over,
# so it stays flat whatever the file.
MEMO_SIZE = 4096
# Calls after which a memo that rarely hits (ids, timestamps) is switched off.
MEMO_TRIAL = 2 * MEMO_SIZE
_MISSING = object()


def memoized(convert: Converter, size: int = MEMO_SIZE, trial: int = MEMO_TRIAL) -> Converter:
    """``convert`` remembering its results for repeated raw values.

    Real files repeat many of their values (categories, countries, flags,
    customers): a converter is a pure function of the raw string and its
    results are immutable (text, numbers, booleans, None), so a repeated
    value can skip the work. Only successes are remembered; a value that
    fails is converted again, so its ``FieldError`` is raised exactly as
    before. A field whose values hardly repeat stops remembering after
    ``trial`` calls, where the look-ups would only add to its cost.
    """
    memo: dict[str, Any] = {}
    get = memo.get
    state = {"calls": 0, "hits": 0, "on": True}

    def run(value: str) -> Any:
        if not state["on"]:
            return convert(value)
        clean = get(value, _MISSING)
        if clean is not _MISSING:
            state["hits"] += 1
            return clean
        clean = convert(value)
        if len(memo) >= size:
            memo.clear()
        memo[value] = clean
        state["calls"] += 1
        if state["calls"] >= trial:
            # `calls` counts misses: keep the memo while at least one value in four is a repeat.
            if state["hits"] < state["calls"] // 3:
                state["on"] = False
                memo.clear()
            state["calls"] = state["hits"] = 0
        return clean

    return run


def needs_work(spec: FieldSpec) -> bool:
    """Whether a field's converter is worth memoizing: text with no transform nor constraint is only a null check."""
    return spec.type != FieldType.STRING or bool(spec.transforms) or bool(spec.constraints)
