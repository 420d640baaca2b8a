"""Declared checks (the schema file's ``checks``) decided on a run's profile and counters.

Each result is a plain dict, stored with the run (``RunQuality.checks``)
and shown as it is by the API, ``run_status --json`` and the run page::

    {"kind": "null_share", "field": "email", "severity": "warn", "status": "failed",
     "observed": 0.125, "expected": {"at_least": null, "at_most": 0.05},
     "message": "null share of 'email' is 0.125, above 0.05"}

``status`` is ``passed``, ``failed`` or ``skipped`` (nothing to measure:
the run was not profiled, or the field has no value in it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion.schema import CheckSpec

from .profile import date_number

__all__ = ["CheckContext", "check_evaluate", "checks_evaluate", "checks_message"]

_LABELS = {
    "row_count": "row count",
    "null_share": "null share",
    "distinct_share": "distinct share",
    "min": "minimum",
    "max": "maximum",
    "mean": "mean",
}


class CheckContext:
    """What checks are decided on: the run's valid rows, its profile, and the gap since the last load."""

    def __init__(
        self, *, rows: int, profile: dict[str, Any] | None, hours_since_last_load: float | None = None
    ) -> None:
        self.rows = rows
        self.profile = profile
        self.hours_since_last_load = hours_since_last_load


def _as_number(bound: Any, type_: str) -> float:
    """A bound as the profile's numbers: days (dates), seconds since 1970 UTC (date-times), else itself."""
    if type_ == "date":
        return date_number(str(bound)[:10])
    if type_ == "datetime":
        moment = datetime.fromisoformat(str(bound).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(seconds=1)
    return float(bound)


def _result(check: CheckSpec, status: str, observed: Any, message: str) -> dict[str, Any]:
    return {
        "kind": check.kind,
        "field": check.field or None,
        "severity": check.severity,
        "status": status,
        "observed": observed,
        "expected": {"hours": check.hours}
        if check.kind == "freshness"
        else {"at_least": check.at_least, "at_most": check.at_most},
        "message": message,
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def check_evaluate(check: CheckSpec, context: CheckContext) -> dict[str, Any]:
    """One check's result on one run."""
    if check.kind == "freshness":
        gap = context.hours_since_last_load
        if gap is None:
            return _result(check, "passed", None, "no earlier successful load to compare with")
        hours = round(gap, 3)
        if check.hours is not None and gap > check.hours:
            return _result(
                check,
                "failed",
                hours,
                f"{_fmt(hours)} h since the previous successful load, more than the allowed {_fmt(check.hours)} h",
            )
        return _result(check, "passed", hours, f"{_fmt(hours)} h since the previous successful load")
    label = _LABELS[check.kind] + (f" of {check.field!r}" if check.field else "")
    observed: Any
    measured: float
    if check.kind == "row_count":
        observed = measured = context.rows
    else:
        stats = (context.profile or {}).get("fields", {}).get(check.field) if context.profile else None
        if stats is None:
            return _result(check, "skipped", None, f"{label}: the run has no profile to measure it on")
        if check.kind in ("null_share", "distinct_share"):
            observed = measured = stats[check.kind]
            if not stats["count"]:
                return _result(check, "skipped", None, f"{label}: the run has no rows")
        else:
            observed = stats.get(check.kind)
            if observed is None:
                return _result(check, "skipped", None, f"{label}: the field has no value in this run")
            numeric = stats.get("numeric")
            measured = numeric[check.kind] if numeric is not None else observed
    type_ = ((context.profile or {}).get("fields", {}).get(check.field) or {}).get("type", "") if check.field else ""
    if check.at_least is not None and measured < _as_number(check.at_least, type_):
        return _result(check, "failed", observed, f"{label} is {_fmt(observed)}, below {_fmt(check.at_least)}")
    if check.at_most is not None and measured > _as_number(check.at_most, type_):
        return _result(check, "failed", observed, f"{label} is {_fmt(observed)}, above {_fmt(check.at_most)}")
    return _result(check, "passed", observed, f"{label} is {_fmt(observed)}")


def checks_evaluate(checks: tuple[CheckSpec, ...] | list[CheckSpec], context: CheckContext) -> list[dict[str, Any]]:
    return [check_evaluate(c, context) for c in checks]


def checks_message(results: list[dict[str, Any]]) -> str:
    """The failed checks in one line (a run's error, a notification's text)."""
    failed = [r for r in results if r["status"] == "failed"]
    return "; ".join(f"{r['severity']} check {r['kind']}: {r['message']}" for r in failed)
