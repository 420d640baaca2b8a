"""Field converters: one small compiled function per schema field.

A schema is compiled once per run into one function per field, so the
per-row work is a loop over plain callables. Every function takes the raw
string and returns the clean value or raises ``FieldError`` with a message
for people. Each type's own parsing comes from the field-type registry
(``ingestion.fieldtypes``); this module adds what every type shares: null
values, transforms, constraints and memoization.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

from ingestion.fieldtypes import Converter, FieldError, field_type
from ingestion.fieldtypes.integer import INT_MAX, INT_MIN
from ingestion.schema import FieldSpec

# The converters themselves belong to the field types (ingestion.fieldtypes);
# these names stay importable from here for the pipeline's other modules.
__all__ = [
    "INT_MAX",
    "INT_MIN",
    "Converter",
    "FieldError",
    "compile_field",
    "memoized",
    "needs_work",
]

_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "collapse_whitespace": lambda v: " ".join(v.split()),
}


def _choice_text(choice: Any) -> str:
    if isinstance(choice, bool):
        return "true" if choice else "false"
    return str(choice)


def _checks(spec: FieldSpec) -> list[Callable[[Any], str | None]]:
    """Constraint checks on the parsed value; each returns a message or None."""
    c = spec.constraints
    checks: list[Callable[[Any], str | None]] = []
    kind = field_type(spec.type)
    as_number = kind.comparable
    if "min" in c:
        low = kind.bound(spec, c["min"])
        checks.append(lambda v: f"must be at least {c['min']}" if as_number(v) < low else None)
    if "max" in c:
        high = kind.bound(spec, c["max"])
        checks.append(lambda v: f"must be at most {c['max']}" if as_number(v) > high else None)
    # Each length has a name of its own: closures over one shared name would see the last value.
    if "min_length" in c:
        min_length: int = c["min_length"]
        checks.append(lambda v: f"must be at least {min_length} characters long" if len(str(v)) < min_length else None)
    if "max_length" in c:
        max_length: int = c["max_length"]
        checks.append(
            lambda v: (
                f"must be at most {max_length} characters long (got {len(str(v))})"
                if len(str(v)) > max_length
                else None
            )
        )
    if "pattern" in c:
        pattern = re.compile(c["pattern"])
        checks.append(lambda v: None if pattern.fullmatch(str(v)) else f"{v!r} does not match {c['pattern']!r}")
    if "choices" in c:
        allowed = frozenset(str(x) for x in c["choices"]) if kind.verbatim else None
        choices = c["choices"]
        if allowed is not None:
            checks.append(lambda v: None if v in allowed else f"{v!r} is not one of {', '.join(map(str, choices))}")
        else:
            # Compare as what the values mean: "1.50" is the choice 1.5. The schema
            # file writes choices as JSON numbers or canonical text, as it writes
            # min and max, whatever separators the field's files use.
            canonical = {k: v for k, v in spec.options.items() if k == "default_timezone"}
            parse_choice = kind.converter(dataclasses.replace(spec, options=canonical))
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
    kind = field_type(spec.type)
    parse = None if kind.verbatim else kind.converter(spec)
    checks = tuple(_checks(spec)) or None
    required = spec.required
    blank_is_null = not kind.verbatim

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
    return not field_type(spec.type).verbatim or bool(spec.transforms) or bool(spec.constraints)
