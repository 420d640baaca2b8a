"""How the commands that run the pipeline report a run or a dry run."""

from __future__ import annotations

from typing import Any

from processing.models import Run
from processing.selectors import run_summary

RUN_FAILED_EXIT = 3  # 1 is bad input (CommandError); 3 means the run itself failed


class RunReportMixin:
    """``report_run`` and ``report_preview`` for a ``DataflowCommand``."""

    stdout: Any
    style: Any
    emit_json: Any  # from DataflowCommand

    def report_run(self, run: Run, as_json: bool) -> None:
        summary = run_summary(run)
        if as_json:
            self.emit_json(summary)
            return
        style = (
            self.style.SUCCESS
            if run.status == "succeeded"
            else (self.style.WARNING if run.status == "partially_succeeded" else self.style.ERROR)
        )
        self.stdout.write(style(f"Run {summary['id']}: {summary['status']}"))
        if summary["error"]:
            self.stdout.write(self.style.ERROR(f"  {summary['error']}"))
        if summary["noop_of"]:
            self.stdout.write(f"  same file already loaded by run {summary['noop_of']}; nothing to do (use --force)")
        if summary["file"]:
            self.stdout.write(_dialect_line(summary["file"]))
        self.stdout.write(counters_text(summary))
        if summary["summary"].get("unknown_columns"):
            self.stdout.write(f"  ignored unknown columns: {', '.join(summary['summary']['unknown_columns'])}")
        if summary["duration_seconds"] is not None:
            self.stdout.write(f"  took {summary['duration_seconds']:.2f}s")
        for r in summary["first_errors"]:
            self.stdout.write(f"  line {r['line']}: {_errors_text(r['errors'])}")
        if summary["rows_rejected"]:
            self.stdout.write(f"  all rejected rows: python manage.py export_rejected --run {summary['id']}")

    def report_preview(self, preview: Any, as_json: bool, extra: dict[str, Any] | None = None) -> None:
        payload = {
            "dry_run": True,
            "status": preview.status,
            "error": preview.error,
            "encoding": preview.encoding,
            "delimiter": preview.delimiter,
            **{k: v for k, v in preview.dialect.items() if k not in ("encoding", "delimiter")},
            "rows_read": preview.rows_read,
            "valid": preview.valid,
            "rejected": preview.rejected,
            "inserted": preview.inserted,
            "updated": preview.updated,
            "unchanged": preview.unchanged,
            "unknown_columns": preview.summary.get("unknown_columns", []),
            "noop_of": preview.noop_of,
            "first_errors": [{"line": r["line"], "errors": r["errors"]} for r in preview.rejected_rows],
            **(extra or {}),
        }
        if as_json:
            self.emit_json(payload)
            return
        self.stdout.write(f"Dry run (nothing written): would end {preview.status}")
        if preview.error:
            self.stdout.write(self.style.ERROR(f"  {preview.error}"))
        self.stdout.write(
            f"{_dialect_line(preview.dialect)}\n"
            f"  rows read {preview.rows_read:,} · valid {preview.valid:,} · rejected {preview.rejected:,}\n"
            f"  new {preview.inserted:,} · updated {preview.updated:,} · unchanged {preview.unchanged:,}"
        )
        if payload["unknown_columns"]:
            self.stdout.write(f"  ignored unknown columns: {', '.join(payload['unknown_columns'])}")
        for r in payload["first_errors"]:
            self.stdout.write(f"  line {r['line']}: {_errors_text(r['errors'])}")


def counters_text(summary: dict[str, Any]) -> str:
    """A run summary's counters as two lines for people."""
    return (
        f"  rows read {summary['rows_read']:,} · valid {summary['rows_valid']:,} · "
        f"rejected {summary['rows_rejected']:,}\n"
        f"  inserted {summary['rows_inserted']:,} · updated {summary['rows_updated']:,} · "
        f"unchanged {summary['rows_unchanged']:,}"
    )


def _dialect_line(dialect: dict[str, Any]) -> str:
    line = f"  encoding {dialect['encoding_text']}"
    if dialect.get("delimiter"):
        line += f" · delimiter {dialect['delimiter_text']}"
    return line


def _errors_text(errors: dict[str, list[str]]) -> str:
    return "; ".join(f"{field}: {', '.join(messages)}" for field, messages in errors.items())
