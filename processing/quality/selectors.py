"""Reading a run's quality: its profile and its check results, one shape for every door."""

from __future__ import annotations

from typing import Any

from ..models import Run, RunQuality

__all__ = ["run_anomalies", "run_checks", "run_profile", "run_quality_of"]


def run_quality_of(run: Run) -> RunQuality | None:
    return RunQuality.objects.filter(run_id=run.pk).first()


def run_profile(run: Run, quality: RunQuality | None = None) -> dict[str, Any]:
    """``{"run": id, "profile": {...} | null}``: null while the run has not ended, or when it was not profiled."""
    quality = quality if quality is not None else run_quality_of(run)
    return {"run": run.pk, "profile": quality.profile if quality is not None else None}


def run_checks(run: Run, quality: RunQuality | None = None) -> list[dict[str, Any]]:
    """The results of the run's declared checks (an empty list when it has none, or has not ended)."""
    quality = quality if quality is not None else run_quality_of(run)
    return list(quality.checks) if quality is not None else []


def run_anomalies(run: Run, quality: RunQuality | None = None) -> list[dict[str, Any]]:
    """The run's anomalies against its dataset's recent runs (an empty list when none)."""
    quality = quality if quality is not None else run_quality_of(run)
    return list(quality.anomalies) if quality is not None else []
