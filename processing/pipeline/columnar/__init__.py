"""Validate & transform a whole chunk at a time, one column per field, with polars.

``ColumnarValidator.validate`` returns, for every row of a chunk and in the
same order, exactly what ``RowValidator.validate`` returns for it: the same
decision, the same messages, the same ``ValidRow`` texts byte for byte. It
gets there by splitting the work three ways:

- **sure cells**, the common spellings each type accepts (``12``, ``1,234.50``,
  ``2024-01-02T03:04:05+02:00``, ``u@example.com``...), are parsed, checked
  and rendered as columns. Every vectorised rule is a strict subset of the
  scalar one: where polars might disagree with Python (non-ASCII case
  mapping, unusual ISO 8601 forms, time zone rules, a number on a bound) the
  cell is *not* sure;
- **other cells**, and every cell of a field whose column repeats few values
  or whose type has no vectorised path, go through the field's own scalar
  converter (``fields.compile_field``), once per distinct value in the chunk;
- **rows**: one with a failing cell is rejected with the scalar converter's
  messages, as the row validator rejects it; one with a wrong width, a bad
  character, an over-long value or an over-long key is handed whole to the
  row validator.

tests/processing/test_validate_columnar.py and test_validate_differential.py
hold both validators to the same outcomes, row for row, on every schema
rule, the suite's edge cases, generated values and messy generated files.

polars runs on a thread pool that a forked child does not get back: a
process whose parent used polars before forking would hang on its first
query. Only the process that first used polars here uses it; a forked child
of it validates row by row (exactly the same results, only slower).
"""

from .validator import DISTINCT_SHARE, ColumnarValidator, Outcome, polars_usable

__all__ = ["DISTINCT_SHARE", "ColumnarValidator", "Outcome", "polars_usable"]
