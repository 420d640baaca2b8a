"""One schema field as a column: its vectorised rules, its scalar converter, its rendering.

Every rule here is a strict subset of the field's scalar converter
(``fields.compile_field``): a cell the expressions cannot decide exactly is
left to the converter (see the package docstring).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import polars as pl

from ingestion.fieldtypes import FieldError, field_type
from ingestion.fieldtypes.base import key_text as plain_key_text
from ingestion.fieldtypes.datetime import utc_text
from ingestion.fieldtypes.email import _SIMPLE_EMAIL_RE
from ingestion.schema import FieldSpec

from ..copytext import COPY_ESCAPED, COPY_NULL, COPY_SPECIALS
from ..fields import INT_MAX, INT_MIN, Converter, _checks

__all__ = ["ColumnField", "json_string"]

# Every character Python's str.strip() and str.split() treat as space; polars
# (Rust) has another list (it leaves out U+001C-U+001F, for one). Written out:
# finding them among all code points cost every validating process 0.4 s of
# CPU at import (a test checks the list against str.isspace()).
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_SPACE_RUN = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in SPACES) + "]+"
_NON_ASCII = r"[^\x00-\x7F]"

# What json.dumps(..., ensure_ascii=False) escapes in a string, and how.
_JSON_SHORT = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_FROM = ["\\", '"', *(chr(i) for i in range(32))]
_JSON_TO = ["\\\\", '\\"', *(_JSON_SHORT.get(chr(i), f"\\u{i:04x}") for i in range(32))]
# Python's csv writer quotes a value holding the delimiter, the quote or a
# character of the line terminator (ingestion.csvwrite).
_CSV_QUOTE = r'[,"\r\n]'

_INT_RE = r"^[+-]?[0-9]+(?:\.0*)?$"
_CANONICAL_DECIMAL_RE = r"^-?(?:[1-9][0-9]*|0)(?:\.[0-9]+)?$"
_ISO_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# The ISO 8601 date-times read in columns, all of which datetime.fromisoformat
# reads the same way; other forms (week dates, basic format, other
# separators, offsets with seconds) go to the scalar converter.
_ISO_DATETIME_RE = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([01][0-9]|2[0-3]):([0-5][0-9])"
    r"(?::([0-5][0-9])(?:\.([0-9]{1,6}))?)?(Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?)?$"
)
_EMAIL_RE = "^" + _SIMPLE_EMAIL_RE.pattern + "$"
# Where a decided comparison of a decimal with a bound must clear the bound
# (relative): far above any rounding of a decimal text to a float.
_BOUND_MARGIN = 1e-9

_DTYPES: dict[str, pl.DataType] = {"integer": pl.Int64(), "boolean": pl.Boolean(), "float": pl.Float64()}
_VECTOR_TYPES = frozenset({"string", "integer", "decimal", "boolean", "date", "datetime", "email"})
_VECTOR_TRANSFORMS = frozenset({"strip", "lower", "upper", "collapse_whitespace"})
# Types whose clean text is digits, signs, points, dashes, colons, "T" and "Z"
# (canonical decimals, ISO dates, UTC date-times): nothing to escape in JSON
# nor to quote in CSV.
_PLAIN_TEXT_TYPES = frozenset({"decimal", "date", "datetime"})


def _literal(text: str) -> str:
    """A regular expression (Rust syntax) matching ``text`` literally."""
    return "".join(f"\\x{{{ord(c):x}}}" for c in text)


def copy_text(c: pl.Expr) -> pl.Expr:
    """Text values as COPY's text format reads them back (``copytext.copy_escape``)."""
    return c.str.replace_many(COPY_SPECIALS, COPY_ESCAPED)


def json_string(c: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit('"'), c.str.replace_many(_JSON_FROM, _JSON_TO), pl.lit('"')])


class _Stages:
    """Expressions run as successive ``with_columns``: a result used several times is computed once.

    (polars' common-subexpression elimination leaves nested ones alone.)
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stages: list[list[pl.Expr]] = [[]]

    def keep(self, name: str, expr: pl.Expr) -> pl.Expr:
        """Compute ``expr`` in the current stage; the column to use from the next one on."""
        column = f"{self.prefix}#{name}"
        self.stages[-1].append(expr.alias(column))
        return pl.col(column)

    def then(self) -> None:
        self.stages.append([])


class ColumnField:
    """One schema field compiled for columns: its vectorised rules and its scalar converter."""

    def __init__(self, spec: FieldSpec, index: int | None, convert: Converter) -> None:
        self.spec = spec
        self.name = spec.name
        self.index = index
        self.convert = convert
        self.kind = field_type(spec.type)
        self.dtype: pl.DataType = _DTYPES.get(spec.type, pl.String())
        self.nulls = ["", *spec.null_values]
        self.required = spec.required
        self.has_key_text = self.kind.key_text is not plain_key_text
        options = spec.options
        self.sep: str = options.get("thousands_separator", "")
        self.point: str = options.get("decimal_separator", ".")
        # Constraints the columns decide; the others are checked on the distinct
        # values by the scalar converter's own check functions.
        self.bounds: tuple[Any, Any] = (None, None)
        self.python_checks: list[Callable[[Any], str | None]] = []
        self.vector = self._compile_vector()

    def _compile_vector(self) -> bool:
        spec, c = self.spec, self.spec.constraints
        if spec.type not in _VECTOR_TYPES or not set(spec.transforms) <= _VECTOR_TRANSFORMS:
            return False
        if any(ch in "0123456789+-eE" for ch in self.sep + self.point) or (self.sep and self.sep == self.point):
            return False
        if ("min_length" in c or "max_length" in c) and spec.type == "boolean":
            return False
        low, high = c.get("min"), c.get("max")
        try:
            if low is not None:
                low = self._bound(self.kind.bound(spec, low), up=True)
            if high is not None:
                high = self._bound(self.kind.bound(spec, high), up=False)
        except (OverflowError, ValueError):
            return False
        if (low is not None or high is not None) and spec.type not in ("integer", "decimal", "date", "datetime"):
            return False
        self.bounds = (low, high)
        rest = {k: v for k, v in c.items() if k in ("pattern", "choices")}
        if rest.get("choices") is not None and self.kind.verbatim:
            rest.pop("choices")  # compared as text, in the columns
        self.python_checks = _checks(dataclasses.replace(spec, constraints=rest)) if rest else []
        return True

    def _bound(self, bound: Any, *, up: bool) -> Any:
        """A bound as the columns compare it (whole numbers, floats, UTC or ISO text)."""
        t = self.spec.type
        if t == "integer":
            whole = math.ceil(bound) if up else math.floor(bound)
            if not INT_MIN <= whole <= INT_MAX:
                raise OverflowError
            return whole
        if t == "decimal":
            return float(bound)
        if t == "datetime":
            return utc_text(bound)
        return bound  # date: ISO text

    # --- converting a column ------------------------------------------------------

    # Column names of this field's intermediate results.
    @property
    def value_column(self) -> str:
        return f"{self.name}#value"

    @property
    def null_column(self) -> str:
        return f"{self.name}#null"

    @property
    def ok_column(self) -> str:
        return f"{self.name}#ok"

    def stages(self) -> list[list[pl.Expr]]:
        """The vectorised pass over the raw column (named after the field), in stages of expressions.

        The last stage gives the parsed value, whether the cell means "no
        value", and whether it surely passes parsing and the constraints
        decided in columns. The caller runs every field's stages in one query.
        """
        st = _Stages(self.name)
        raw = pl.col(self.name)
        t = raw
        unsure = pl.lit(False)
        for name in self.spec.transforms:
            if name == "strip":
                t = t.str.strip_chars(SPACES)
            elif name == "collapse_whitespace":
                t = t.str.strip_chars(SPACES).str.replace_all(_SPACE_RUN, " ")
            else:  # lower, upper: Python and Rust map ASCII alike, not everything else
                unsure = unsure | t.str.contains(_NON_ASCII)
                t = t.str.to_lowercase() if name == "lower" else t.str.to_uppercase()
        if self.spec.transforms:
            t = st.keep("t", t)
            st.keep("unsure", unsure)
            st.then()
            unsure = pl.col(f"{self.name}#unsure")
        null = raw.is_in(self.nulls) | t.is_in(self.nulls)
        if not self.kind.verbatim:
            null = null | (t.str.strip_chars(SPACES) == "")
        value, ok = self._parse(t, st)
        checks = self._checks(value)
        if checks is not None:
            ok = ok & checks
        st.keep("value", value)
        st.keep("null", null)
        st.keep("ok", (ok & ~unsure).fill_null(False))
        return st.stages

    def column(self, frame: pl.DataFrame, vectorised: pl.DataFrame | None) -> tuple[pl.Series, pl.Series | None]:
        """The clean values of the column and each failing cell's message (None: no cell fails).

        ``vectorised`` holds the results of ``stages`` (None: every cell
        goes to the scalar converter, once per distinct value).
        """
        if vectorised is None:
            return self._scalar(frame, None)
        ok = vectorised[self.ok_column]
        if self.python_checks:
            ok = ok & self._python_checks(vectorised)
        null = vectorised[self.null_column]
        # A null cell is sure unless the field is required (the converter says so).
        sure = (ok & ~null) if self.required else (null | ok)
        return self._scalar(frame, ~sure, vectorised[self.value_column].cast(self.dtype), null)

    def _scalar(
        self,
        frame: pl.DataFrame,
        todo: pl.Series | None,
        value: pl.Series | None = None,
        null: pl.Series | None = None,
    ) -> tuple[pl.Series, pl.Series | None]:
        """Convert the ``todo`` cells (all when None) with the scalar converter, once per distinct value."""
        raw = pl.col(self.name)
        distinct = frame.select((raw if todo is None else raw.filter(todo)).unique())
        keys: list[str] = []
        values: list[Any] = []
        failing: list[str] = []
        messages: list[str] = []
        for text in distinct.to_series().to_list():
            try:
                result = self.convert(text)
            except FieldError as exc:
                failing.append(text)
                messages.append(str(exc))
                continue
            keys.append(text)
            values.append(result)
        patch = (
            raw.replace_strict(keys, pl.Series(values, dtype=self.dtype), default=None, return_dtype=self.dtype)
            if keys
            else pl.lit(None, dtype=self.dtype)
        )
        error = raw.replace_strict(failing, messages, default=None, return_dtype=pl.String) if failing else None
        if todo is not None:
            assert value is not None and null is not None
            todo_ = pl.lit(todo)
            patch = pl.when(todo_).then(patch).when(pl.lit(null)).then(None).otherwise(pl.lit(value))
            if error is not None:
                error = pl.when(todo_).then(error)
        columns = [patch.alias(self.name)] + ([error.alias("#error")] if error is not None else [])
        out = frame.select(columns)
        return out[self.name], out["#error"] if error is not None else None

    def _prep_number(self, t: pl.Expr, st: _Stages) -> tuple[pl.Expr, pl.Expr]:
        """number_prep in columns: strip, well-placed thousands separators, the decimal point."""
        v = st.keep("stripped", t.str.strip_chars(SPACES))
        st.then()
        unsure = pl.lit(False)
        if self.sep:
            sep, point = _literal(self.sep), _literal(self.point)
            grouped = rf"^[+-]?[0-9]{{1,3}}(?:{sep}[0-9]{{3}})+(?:{point}[0-9]*)?$"
            unsure = v.str.contains(sep) & ~v.str.contains(grouped)
            v = v.str.replace_all(self.sep, "", literal=True)
        if self.point != ".":
            unsure = unsure | v.str.contains(".", literal=True)
            v = v.str.replace_all(self.point, ".", literal=True)
        v, unsure = st.keep("number", v), st.keep("unsure_number", unsure)
        st.then()
        return v, unsure

    def _parse(self, t: pl.Expr, st: _Stages) -> tuple[pl.Expr, pl.Expr]:
        """The parsed value of a (transformed, non-null) cell and whether it is surely valid."""
        kind = self.spec.type
        if kind == "string":
            return t, pl.lit(True)
        if kind == "email":
            ok = t.str.contains(_EMAIL_RE) & (t.str.len_chars() <= 254) & (t.str.find("@", literal=True) <= 64)
            return t, ok
        if kind == "boolean":
            v = t.str.strip_chars(SPACES).str.to_lowercase()
            ascii_ = ~t.str.contains(_NON_ASCII)
            yes, no = v.is_in(["true", "yes", "1", "t", "y"]), v.is_in(["false", "no", "0", "f", "n"])
            return yes, ascii_ & (yes | no)
        if kind == "integer":
            v, unsure = self._prep_number(t, st)
            whole = st.keep("whole", v.str.replace(r"\.0*$", ""))
            st.then()
            digits = whole.str.replace(r"^[+-]", "").str.strip_chars_start("0")
            number = whole.cast(pl.Int64, strict=False)
            ok = ~unsure & v.str.contains(_INT_RE) & (digits.str.len_chars() <= 18) & number.is_not_null()
            return number, ok
        if kind == "decimal":
            v, unsure = self._prep_number(t, st)
            digits = (
                v.str.len_chars().cast(pl.Int64)
                - v.str.starts_with("-").cast(pl.Int64)
                - v.str.contains(".", literal=True).cast(pl.Int64)
            )
            return v, ~unsure & v.str.contains(_CANONICAL_DECIMAL_RE) & (digits <= 40)
        if kind == "date":
            v = st.keep("stripped", t.str.strip_chars(SPACES))
            st.then()
            ok = v.str.contains(_ISO_DATE_RE) & ~v.str.starts_with("0000")
            return v, ok & v.str.to_date("%Y-%m-%d", strict=False).is_not_null()
        if kind == "datetime":
            return self._parse_datetime(t, st)
        raise AssertionError(kind)  # pragma: no cover - _VECTOR_TYPES lists the types handled

    def _parse_datetime(self, t: pl.Expr, st: _Stages) -> tuple[pl.Expr, pl.Expr]:
        parts = st.keep("parts", t.str.strip_chars(SPACES).str.extract_groups(_ISO_DATETIME_RE))
        st.then()
        day, hour, minute, second, fraction, offset = (
            st.keep(f"part{i}", parts.struct.field(str(i))) for i in range(1, 7)
        )
        st.then()
        text = pl.concat_str(
            [
                day,
                pl.lit("T"),
                hour.fill_null("00"),
                pl.lit(":"),
                minute.fill_null("00"),
                pl.lit(":"),
                second.fill_null("00"),
                pl.lit("."),
                fraction.fill_null("").str.pad_end(6, "0"),
            ]
        )
        naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
        sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
        hhmm = offset.str.replace_all(r"[^0-9]", "")
        hours = hhmm.str.slice(0, 2).cast(pl.Int64, strict=False)
        minutes = (hours * 60 + hhmm.str.slice(2, 2).cast(pl.Int64, strict=False)) * sign
        minutes = pl.when(offset == "Z").then(0).otherwise(minutes)
        # A value without an offset is in the field's zone: only UTC is sure in columns.
        if self.spec.options.get("default_timezone", "UTC") == "UTC":
            minutes = minutes.fill_null(0)
        naive, minutes = st.keep("naive", naive), st.keep("minutes", minutes)
        st.then()
        moment = st.keep("moment", naive - pl.duration(minutes=minutes))
        st.then()
        ok = ~day.str.starts_with("0000") & naive.is_not_null() & minutes.is_not_null()
        ok = ok & moment.dt.year().is_between(1, 9999)
        return moment.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f") + pl.lit("Z"), ok

    def _checks(self, v: pl.Expr) -> pl.Expr | None:
        """The constraints decided in columns (a cell passing them surely passes the scalar checks)."""
        c = self.spec.constraints
        checks: list[pl.Expr] = []
        low, high = self.bounds
        if self.spec.type == "decimal":
            # Strict float comparisons with a margin decide; a value on a bound is left to Decimal.
            number = v.cast(pl.Float64, strict=False)
            if low is not None:
                checks.append(number - low > abs(low) * _BOUND_MARGIN + 1e-300)
            if high is not None:
                checks.append(high - number > abs(high) * _BOUND_MARGIN + 1e-300)
        else:
            if low is not None:
                checks.append(v >= low)
            if high is not None:
                checks.append(v <= high)
        if "min_length" in c or "max_length" in c:
            length = (v.cast(pl.String) if self.dtype == pl.Int64 else v).str.len_chars()
            if "min_length" in c:
                checks.append(length >= c["min_length"])
            if "max_length" in c:
                checks.append(length <= c["max_length"])
        if "choices" in c and self.kind.verbatim:
            checks.append(v.is_in([str(x) for x in c["choices"]]))
        if not checks:
            return None
        out = checks[0]
        for check in checks[1:]:
            out = out & check
        return out

    def _python_checks(self, vectorised: pl.DataFrame) -> pl.Series:
        """Pattern and parsed choices: the scalar check functions, once per distinct candidate value."""
        value = pl.col(self.value_column)
        candidates = vectorised.select(value.filter(pl.col(self.ok_column) & ~pl.col(self.null_column)).unique())
        passing = [v for v in candidates.to_series().to_list() if all(not check(v) for check in self.python_checks)]
        values = vectorised[self.value_column]
        return values.is_in(pl.Series(passing, dtype=values.dtype).implode()).fill_null(False)

    # --- rendering ----------------------------------------------------------------

    def render(self, clean: pl.Series, *, keyed: bool) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
        """The JSON value, CSV cell, key text and COPY text of each clean value (expressions on its column).

        The key text is only worked out for a field of the key or a unique one (``keyed``).
        """
        c = pl.col(self.name)
        if self.dtype == pl.Float64:
            # Python's float repr (what json.dumps, csv and str write) is not polars'.
            texts = pl.Series([None if x is None else repr(x) for x in clean.to_list()], dtype=pl.String)
            text = pl.lit(texts)
            return text.fill_null("null"), text.fill_null(""), text, text.fill_null(COPY_NULL)
        if self.dtype == pl.Boolean:
            word = pl.when(c).then(pl.lit("true")).otherwise(pl.lit("false"))
            text = pl.when(c.is_null()).then(None).otherwise(word)
            return text.fill_null("null"), text.fill_null(""), text, text.fill_null(COPY_NULL)
        if self.dtype == pl.Int64:
            text = c.cast(pl.String)
            return text.fill_null("null"), text.fill_null(""), text, text.fill_null(COPY_NULL)
        key = c
        if self.spec.type in _PLAIN_TEXT_TYPES:
            json_text = pl.concat_str([pl.lit('"'), c, pl.lit('"')]).fill_null("null")
            return json_text, c.fill_null(""), self._key_text(clean, c) if keyed else key, c.fill_null(COPY_NULL)
        quoted = pl.concat_str([pl.lit('"'), c.str.replace_all('"', '""', literal=True), pl.lit('"')])
        cell = pl.when(c.str.contains(_CSV_QUOTE)).then(quoted).otherwise(c).fill_null("")
        if keyed:
            key = self._key_text(clean, c)
        return json_string(c).fill_null("null"), cell, key, copy_text(c).fill_null(COPY_NULL)

    def _key_text(self, clean: pl.Series, c: pl.Expr) -> pl.Expr:
        """The text keys and unique values compare: the type's own function (decimals), once per distinct value."""
        if not self.has_key_text:
            return c
        distinct = clean.drop_nulls().unique().to_list()
        texts = [self.kind.key_text(v) for v in distinct]
        return c.replace_strict(distinct, texts, default=None, return_dtype=pl.String) if distinct else c
