"""Rejected rows: whether a row kept all its characters, editing, discarding and reloading them.

Every change to rejected rows is a function here, audited, and refused
(``PermissionDenied``) to a user without the ``fix_rejected`` action on the
row's dataset; ``user=None`` is a management command or a schedule.
"""

from __future__ import annotations

import io
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ingestion.audit import audit_record
from ingestion.csvwrite import csv_writer
from ingestion.models import AuditAction, Dataset, DatasetAction
from ingestion.reader import CsvReader
from ingestion.selectors import action_role, dataset_may
from ingestion.services.raw_files import raw_file_receive

from ..models import LOADED_STATUSES, RejectedRow, Run, RunTrigger
from .runs import run_create, run_execute

logger = logging.getLogger(__name__)


_LOSSY_ERRORS = (
    "contains a NUL byte",
    "contains bytes that are not valid",
    "contains a lone surrogate",
    "characters long, over the limit",
)
_PLACEHOLDER = re.compile(r"\u2400|\\x[0-9a-f]{2}|\\ud[89a-f][0-9a-f]{2}")


def rejected_row_is_lossy(row: RejectedRow) -> bool:
    """True while a row's stored raw values are stand-ins for what the file held.

    NUL bytes, undecodable bytes and over-long values are stored in a
    printable or shortened form; loading them as they are would store the
    stand-ins as data, so such rows must be edited before they are reloaded.
    """
    messages = [m for ms in row.errors.values() for m in ms]
    if not any(marker in m for m in messages for marker in _LOSSY_ERRORS):
        return False
    values = [v for k, v in row.raw.items() if k != "__extra__" and isinstance(v, str)]
    return any(_PLACEHOLDER.search(v) or (len(v) == 201 and v.endswith("\u2026")) for v in values)


def rejected_rows_reload(
    *, run: Run, row_ids: list[int], user: Any = None, trigger: str = RunTrigger.ADMIN
) -> tuple[Run, int]:
    """Validate selected rejected rows of ``run`` again and load those that now pass.

    The rows (with any edits made to their raw values) become a small CSV
    file processed by a new run linked to ``run``, under the dataset's
    current schema. Rows that load leave quarantine; rows that still fail
    move to the new run with their new reasons, so each bad row is kept once.
    Returns the new run and how many rows were loaded.
    """
    rows = list(RejectedRow.objects.filter(run=run, pk__in=row_ids, discarded_at=None).order_by("line_number"))
    if not rows:
        raise ValidationError("Select at least one rejected row of this run.")
    lossy = [r for r in rows if rejected_row_is_lossy(r)]
    rows = [r for r in rows if r not in lossy]
    if not rows:
        raise ValidationError(
            f"{len(lossy)} selected row(s) still hold values that were replaced when they were quarantined "
            "(a NUL byte, undecodable bytes or a cut-off long value): edit those values first."
        )
    headers = list(run.summary.get("headers") or [])
    for r in rows:
        headers.extend(h for h in r.raw if h not in headers and h != "__extra__")
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(headers)
    for r in rows:
        extra = r.raw.get("__extra__") or []
        writer.writerow([str(r.raw.get(h, "")) for h in headers] + [str(v) for v in extra])
    content = buffer.getvalue().encode("utf-8")
    # Where each row starts in the new file (values may span lines).
    reader = CsvReader(io.BytesIO(content), encoding="utf-8", delimiter=",")
    reader.read_header()
    origin = {raw_row.line: r.pk for raw_row, r in zip(reader.rows(), rows, strict=True)}

    raw_file = raw_file_receive(
        dataset=run.dataset,
        source=io.BytesIO(content),
        original_name=f"run-{run.pk}-fixed-rows.csv",
        user=user,
        encoding="utf-8",
        delimiter=",",
    )
    new_run = run_create(dataset=run.dataset, raw_file=raw_file, trigger=trigger, user=user, force=True, parent=run)
    finished = run_execute(run_id=new_run.pk)
    assert finished is not None
    loaded = 0
    if finished.status in LOADED_STATUSES:
        still_rejected = set(RejectedRow.objects.filter(run=finished).values_list("line_number", flat=True))
        loaded = sum(1 for line in origin if line not in still_rejected)
        RejectedRow.objects.filter(pk__in=origin.values()).delete()
        Run.objects.filter(pk=run.pk).update(rows_fixed=F("rows_fixed") + loaded)
    finished.summary["fixed_rows_of_run"] = {"run": run.pk, "loaded": loaded, "left_lossy": len(lossy)}
    finished.save(update_fields=["summary"])
    audit_record(
        action=AuditAction.REJECTED_ROWS_FIXED,
        actor=user,
        dataset=run.dataset,
        obj=finished,
        details={"run": run.pk, "rows": len(rows), "loaded": loaded},
    )
    return finished, loaded


EXTRA = "__extra__"
_SLICE = 500


def _require_fix(user: Any, dataset: Dataset) -> None:
    if user is not None and not dataset_may(user, dataset, DatasetAction.FIX_REJECTED):
        raise PermissionDenied(
            f"Fixing rejected rows of dataset {dataset.slug!r} needs the "
            f"{action_role(DatasetAction.FIX_REJECTED)} role on it."
        )


def _check_raw(raw: Any) -> None:
    if not isinstance(raw, dict):
        raise ValidationError("Raw values must be an object of column: value.")
    for column, value in raw.items():
        if column == EXTRA:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValidationError("__extra__ must be a list of text values.")
        elif not isinstance(value, str):
            raise ValidationError(f"The value of {column!r} must be text.")


def rejected_row_edit(*, row: RejectedRow, raw: dict[str, Any], user: Any = None) -> RejectedRow:
    """Store new raw values for one rejected row, exactly as given.

    The values stay text, untouched (spaces, line breaks and every
    character kept); the row is checked again only when it is reloaded.
    """
    _require_fix(user, row.run.dataset)
    if row.discarded_at is not None:
        raise ValidationError("This row was discarded; it cannot be edited.")
    _check_raw(raw)
    changed = sorted(k for k in {*raw, *row.raw} if raw.get(k) != row.raw.get(k))
    if not changed:
        return row
    row.raw = raw
    row.save(update_fields=["raw"])
    audit_record(
        action=AuditAction.REJECTED_ROWS_EDITED,
        actor=user,
        dataset=row.run.dataset,
        obj=row.run,
        details={"operation": "edit", "rows": 1, "changed": 1, "line": row.line_number, "columns": changed},
    )
    return row


def _rows_for_change(row_ids: list[int], user: Any) -> list[RejectedRow]:
    """The selected rows still in quarantine, once the user may fix every dataset they belong to."""
    rows: list[RejectedRow] = []
    # In slices: a selection of every row of a big run must not exceed SQLite's query parameters.
    for start in range(0, len(row_ids), _SLICE):
        rows.extend(
            RejectedRow.objects.filter(pk__in=row_ids[start : start + _SLICE], discarded_at=None).select_related(
                "run", "run__dataset"
            )
        )
    rows.sort(key=lambda r: (r.run_id, r.line_number))
    for dataset in {r.run.dataset_id: r.run.dataset for r in rows}.values():
        _require_fix(user, dataset)
    return rows


def _edit_values(
    *, row_ids: list[int], column: str, user: Any, change: Callable[[str], str], details: dict[str, Any]
) -> int:
    if not column:
        raise ValidationError("Name the column to change.")
    rows = _rows_for_change(row_ids, user)
    changed: list[RejectedRow] = []
    for row in rows:
        value = row.raw.get(column)
        if not isinstance(value, str):
            continue
        new = change(value)
        if new != value:
            row.raw = {**row.raw, column: new}
            changed.append(row)
    with transaction.atomic():
        RejectedRow.objects.bulk_update(changed, ["raw"], batch_size=500)
        by_dataset: dict[int, list[RejectedRow]] = defaultdict(list)
        for row in rows:
            by_dataset[row.run.dataset_id].append(row)
        for group in by_dataset.values():
            ids = {r.pk for r in group}
            audit_record(
                action=AuditAction.REJECTED_ROWS_EDITED,
                actor=user,
                dataset=group[0].run.dataset,
                details={
                    **details,
                    "column": column,
                    "rows": len(group),
                    "changed": sum(1 for r in changed if r.pk in ids),
                    "runs": sorted({r.run_id for r in group}),
                },
            )
    return len(changed)


def rejected_rows_set_value(*, row_ids: list[int], column: str, value: str, user: Any = None) -> int:
    """Set ``column`` to ``value`` (text, as given) on the selected rows that have that column.

    Returns how many rows changed (rows that already held the value, or have
    no such column, are left as they are).
    """
    return _edit_values(
        row_ids=row_ids,
        column=column,
        user=user,
        change=lambda _old: value,
        details={"operation": "set", "value": value},
    )


def rejected_rows_replace(*, row_ids: list[int], column: str, find: str, replace: str, user: Any = None) -> int:
    """Replace every occurrence of ``find`` by ``replace`` in ``column`` of the selected rows.

    Plain text, case-sensitive, no patterns. Returns how many rows changed.
    """
    if not find:
        raise ValidationError("Give the text to find.")
    return _edit_values(
        row_ids=row_ids,
        column=column,
        user=user,
        change=lambda old: old.replace(find, replace),
        details={"operation": "replace", "find": find, "replace": replace},
    )


def rejected_rows_discard(*, row_ids: list[int], reason: str, user: Any = None) -> int:
    """Take the selected rows out of quarantine without loading them, saying why.

    The rows are kept, marked with who discarded them, when and why: they no
    longer count as waiting to be fixed (the console hides them by default,
    the API's and exports' lists leave them out) but the trail stays.
    Returns how many rows were discarded.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError("Say why these rows are discarded.")
    rows = _rows_for_change(row_ids, user)
    if not rows:
        return 0
    actor = user if getattr(user, "pk", None) else None
    now = timezone.now()
    by_dataset: dict[int, list[RejectedRow]] = defaultdict(list)
    for row in rows:
        by_dataset[row.run.dataset_id].append(row)
    with transaction.atomic():
        ids = [r.pk for r in rows]
        for start in range(0, len(ids), _SLICE):
            RejectedRow.objects.filter(pk__in=ids[start : start + _SLICE], discarded_at=None).update(
                discarded_at=now,
                discarded_by=actor,
                discarded_by_name=actor.get_username()[:150] if actor else "",
                discard_reason=reason,
            )
        for group in by_dataset.values():
            audit_record(
                action=AuditAction.REJECTED_ROWS_DISCARDED,
                actor=user,
                dataset=group[0].run.dataset,
                details={
                    "rows": len(group),
                    "reason": reason,
                    "runs": sorted({r.run_id for r in group}),
                    "lines": [r.line_number for r in group[:100]],
                },
            )
    return len(rows)
