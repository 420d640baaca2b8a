"""Rejected rows: whether a row kept all its characters, and reloading fixed rows."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F

from ingestion.audit import audit_record
from ingestion.csvwrite import csv_writer
from ingestion.models import AuditAction
from ingestion.reader import CsvReader
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
    rows = list(RejectedRow.objects.filter(run=run, pk__in=row_ids).order_by("line_number"))
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
