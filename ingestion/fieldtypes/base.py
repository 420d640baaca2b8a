"""What a field type is: one ``FieldTypeSpec`` declaring everything the product does with it.

Each type lives in its own module of this package and is registered once in
``ingestion.fieldtypes.FIELD_TYPES``. Parsing the schema file, the
pipeline's converters, record filters and their indexes, the dataset
OpenAPI document, CSV and Parquet exports and schema inference all ask the
registry instead of keeping a table of their own (docs/development.md,
"Adding a field type").

Converters need only the standard library, Django's validators and a field's
options, so they live here, at the bottom of the layers, and every app can
use them. ``FieldSpec`` is imported for type hints only: ``ingestion.schema``
asks this package which options each type accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ingestion.schema import FieldSpec


class FieldError(ValueError):
    """A value broke a rule; the message is shown to people as is."""


Converter = Callable[[str], Any]
ConverterFactory = Callable[["FieldSpec"], Converter]
# How record filters compare a type's stored values (processing.record_queries.FieldValue).
FilterKind = Literal["text", "number", "boolean"]

TEXT_OPERATORS = ("eq", "gte", "lte", "in", "contains")
ORDERED_OPERATORS = ("eq", "gte", "lte", "in")


def _same(value: Any) -> Any:
    return value


def _bound_as_is(spec: FieldSpec, raw: Any) -> Any:
    return raw


def key_text(value: Any) -> str:
    """A stored value as the text natural keys and ``unique`` compare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class FieldTypeSpec:
    """Everything about one field type, declared once.

    Schema file:
      ``options``: the keys a field of this type accepts on top of the common
      ones (``thousands_separator``…). ``numeric`` / ``ordered``: whether
      ``min``/``max`` apply, and how; ``bound_problem`` checks such a bound as
      written in the schema file (a message, or None); ``choice_fits`` is the
      rough check of a ``choices`` entry.
    Pipeline:
      ``converter(spec)`` builds the function turning a raw string into the
      stored value or raising ``FieldError``. ``verbatim`` types keep the text
      as written (no parser runs; a value of spaces is a value, not a null;
      ``choices`` compare as text). ``comparable`` turns a stored value into
      what constraints compare (``Decimal`` for decimal text), ``bound`` a
      schema's ``min``/``max`` into the same. ``key_text`` is the text
      natural keys and ``unique`` compare (one text per decimal number).
    Storage:
      ``sql_type`` is the PostgreSQL column type of a typed record table,
      ``sqlite_type`` the SQLite column type (its affinity).
    API:
      ``openapi`` is the OpenAPI schema of a stored value, ``openapi_filter``
      of a filter's query value; ``operators`` the record filters it
      supports (``eq`` also written without a suffix), ``filter_kind`` how
      filters compare its values.
    Exports:
      ``is_text``: free text people wrote (CSV export neutralises formulas;
      filters compare it as given). ``arrow_type`` names the Parquet column type,
      a pyarrow type factory and its arguments, e.g. ``("timestamp", "us", "UTC")``
      (None: exported as text; the name keeps pyarrow out of this module), ``arrow_value`` turns a stored value into it.
    Inference:
      ``infer_rank`` orders the candidate types, narrowest first (None: never
      proposed), ``infer_options`` the option sets tried, ``infer_noun`` names
      its values in reports, ``infer_fits`` narrows what the converter accepts
      to what people write, ``good_key`` whether its values may be proposed
      as a key.
    """

    name: str
    label: str
    converter: ConverterFactory
    sql_type: str
    sqlite_type: str
    openapi: Mapping[str, Any]
    openapi_filter: Mapping[str, Any]
    operators: tuple[str, ...]
    filter_kind: FilterKind
    options: tuple[str, ...] = ()
    verbatim: bool = False
    is_text: bool = False
    numeric: bool = False
    ordered: bool = False
    bound_problem: Callable[[Any], str | None] | None = None
    choice_fits: Callable[[Any], bool] = field(default=lambda choice: isinstance(choice, str) or is_number(choice))
    comparable: Callable[[Any], Any] = _same
    bound: Callable[[FieldSpec, Any], Any] = _bound_as_is
    key_text: Callable[[Any], str] = key_text
    arrow_type: tuple[str, ...] | None = None
    arrow_value: Callable[[Any], Any] = _same
    infer_rank: int | None = None
    infer_options: tuple[Mapping[str, Any], ...] = ({},)
    infer_noun: str = ""
    infer_fits: Callable[[str], bool] = field(default=lambda value: True)
    good_key: bool = True


# --- Helpers shared by several types ------------------------------------------------


def is_number(value: Any) -> bool:
    """A JSON number of the schema file (not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_bound_problem(value: Any) -> str | None:
    return None if is_number(value) else "must be a number"


def number_choice_fits(choice: Any, *, whole: bool = False) -> bool:
    """A rough type check of a numeric choice; the validator parses it exactly."""
    if is_number(choice):
        return not whole or float(choice).is_integer()
    if isinstance(choice, str):
        try:
            number = Decimal(choice.strip())
        except InvalidOperation:
            return False
        return number.is_finite() and (not whole or number == number.to_integral_value())
    return False


def is_iso(value: Any, *, with_time: bool) -> bool:
    """An ISO 8601 date (or date-time) string, as the schema file writes bounds and choices."""
    if not isinstance(value, str):
        return False
    try:
        if with_time:
            datetime.fromisoformat(value)
        else:
            date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _grouping_re(sep: str, point: str) -> re.Pattern[str]:
    s, p = re.escape(sep), re.escape(point)
    return re.compile(rf"[+-]?\d{{1,3}}(?:{s}\d{{3}})+(?:{p}\d*)?", re.ASCII)


def number_prep(spec: FieldSpec) -> Callable[[str], str]:
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
