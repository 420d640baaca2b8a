"""``{% run_quality run %}``: a run's check results and profile on its console page."""

from __future__ import annotations

from typing import Any

from django import template

from ..models import Run
from ..quality.selectors import run_anomalies, run_checks, run_profile, run_quality_of

register = template.Library()


@register.inclusion_tag("admin/processing/run/_quality.html")
def run_quality(run: Run) -> dict[str, Any]:
    quality = run_quality_of(run)
    profile = run_profile(run, quality)["profile"]
    fields = []
    for name, stats in ((profile or {}).get("fields") or {}).items():
        fields.append({"name": name, **stats})
    return {
        "checks": run_checks(run, quality),
        "anomalies": run_anomalies(run, quality),
        "profile": profile,
        "fields": fields,
    }
