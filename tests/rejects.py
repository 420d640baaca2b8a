"""The console's per-column form of a rejected row, as a browser would post it."""

from __future__ import annotations

from typing import Any

from processing.admin.rejected import row_form
from processing.models import RejectedRow


def row_form_data(row: RejectedRow, **changes: str) -> dict[str, Any]:
    """The row's values as its edit form sends them, with ``changes`` (column: new text) typed in."""
    form = row_form(row)
    data = {f"col_{i}": changes.get(column, row.raw[column]) for i, column in enumerate(form.columns)}
    for i, value in enumerate(row.raw.get("__extra__") or []):
        data[f"extra_{i}"] = value
    return data
