"""Anomalies: a run's figures against the dataset's recent successful runs, with no configuration.

From a dataset's 5th successful run on (``MIN_HISTORY`` earlier ones with a
profile), each figure of the run is compared with the same figure over the
last ``WINDOW`` successful runs by a robust z-score: ``(x - median) / (1.4826
* MAD)``. A figure is anomalous when its score passes ``Z_THRESHOLD`` *and*
it moved by more than a floor (``_floor``): a figure that hardly varies has
a tiny MAD, and a score alone would then flag noise.

Figures: the valid row count, the reject rate, and per field the null
share, the mean and the standard deviation of numbers and dates. Categorical
fields are compared with the pooled distribution of the window (fields of a text, boolean or integer type with
at most ``MAX_CATEGORIES`` distinct values) by the population stability index (PSI > 0.25,
the usual "significant shift" mark).

Each anomaly is ``{"kind", "field", "observed", "expected": [low, high], "score"}``.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from .profile import TOP_SHOWN

__all__ = ["MIN_HISTORY", "WINDOW", "anomalies_detect"]

MIN_HISTORY = 4
WINDOW = 20
Z_THRESHOLD = 3.5
PSI_THRESHOLD = 0.25
# Only a field whose every value is in its stored ``top`` (profile.TOP_SHOWN) has its distribution compared.
MAX_CATEGORIES = TOP_SHOWN
CATEGORICAL_TYPES = frozenset({"string", "boolean", "email", "url", "integer"})
_MAD_SCALE = 1.4826


def _floor(kind: str, median: float, rows: int) -> float:
    """The least change that counts, whatever the score.

    10 % of the usual value; for a share, 0.02 or four standard errors of a
    share measured on ``rows`` rows, whichever is more (a small file's share
    varies more from run to run).
    """
    if kind in ("null_share", "reject_rate"):
        p = min(max(median, 0.0), 1.0)
        return max(0.02, 4 * math.sqrt(p * (1 - p) / max(rows, 1)))
    return 0.1 * abs(median)


def _scored(
    kind: str, field: str | None, value: float | None, history: list[float], rows: int = 0
) -> dict[str, Any] | None:
    if value is None or len(history) < MIN_HISTORY:
        return None
    median = statistics.median(history)
    mad = statistics.median(abs(h - median) for h in history)
    floor = _floor(kind, median, rows)
    scale = max(_MAD_SCALE * mad, floor / Z_THRESHOLD, 1e-12)
    score = abs(value - median) / scale
    if score < Z_THRESHOLD or abs(value - median) <= floor:
        return None
    return {
        "kind": kind,
        "field": field,
        "observed": value,
        "expected": [median - Z_THRESHOLD * scale, median + Z_THRESHOLD * scale],
        "score": round(score, 2),
    }


def _psi(current: dict[str, int], baseline: dict[str, int]) -> tuple[float, float]:
    """The population stability index of ``current`` against ``baseline``, and the level noise alone reaches.

    Counts are smoothed by half a value (a category missing on one side
    would otherwise weigh without bound). Two samples of one distribution
    still differ: their PSI is about ``(k - 1) * (1 / n_current + 1 / n_baseline)``
    (it is a symmetrised chi-squared divided by the counts), so a shift must
    pass ``PSI_THRESHOLD`` on top of three times that.
    """
    values = set(current) | set(baseline)
    total_c = sum(current.values()) + 0.5 * len(values)
    total_b = sum(baseline.values()) + 0.5 * len(values)
    psi = 0.0
    for value in values:
        c = (current.get(value, 0) + 0.5) / total_c
        b = (baseline.get(value, 0) + 0.5) / total_b
        psi += (c - b) * math.log(c / b)
    noise = (len(values) - 1) * (1 / total_c + 1 / total_b)
    return psi, noise


def _categorical(stats: dict[str, Any]) -> bool:
    """A field of few values (categories, flags): its distribution is compared, not its mean."""
    return stats.get("type") in CATEGORICAL_TYPES and stats.get("distinct", 0) <= MAX_CATEGORIES


def _figure(stats: dict[str, Any], key: str) -> float | None:
    numeric = stats.get("numeric")
    value = numeric.get(key) if numeric is not None and key == "mean" else stats.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def anomalies_detect(current: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anomalies of a run against ``history`` (newest first); each item ``{"rows", "rejected", "read", "profile"}``."""
    history = history[:WINDOW]
    if len(history) < MIN_HISTORY:
        return []
    found: list[dict[str, Any] | None] = [
        _scored("row_count", None, current["rows"], [h["rows"] for h in history]),
        _scored(
            "reject_rate",
            None,
            current["rejected"] / current["read"] if current["read"] else None,
            [h["rejected"] / h["read"] for h in history if h["read"]],
            current["read"],
        ),
    ]
    fields = ((current.get("profile") or {}).get("fields")) or {}
    past = [((h.get("profile") or {}).get("fields")) or {} for h in history]
    for name, stats in fields.items():
        earlier = [p[name] for p in past if name in p]
        found.append(
            _scored("null_share", name, stats.get("null_share"), [e["null_share"] for e in earlier], stats["count"])
        )
        for key in ("mean", "std"):
            values = [v for v in (_figure(e, key) for e in earlier) if v is not None]
            found.append(_scored(key, name, _figure(stats, key), values))
        top = stats.get("top") if _categorical(stats) else None
        tops = [e.get("top") if _categorical(e) else None for e in earlier]
        if top and len(tops) >= MIN_HISTORY and all(tops):
            baseline: dict[str, int] = {}
            for t in tops:
                for item in t or []:
                    baseline[item["value"]] = baseline.get(item["value"], 0) + item["count"]
            psi, noise = _psi({item["value"]: item["count"] for item in top}, baseline)
            if psi > PSI_THRESHOLD + 3 * noise:
                found.append(
                    {
                        "kind": "distribution",
                        "field": name,
                        "observed": {item["value"]: item["count"] for item in top},
                        "expected": f"the shares of the last runs (PSI at most {PSI_THRESHOLD + 3 * noise:.3f})",
                        "score": round(psi, 3),
                    }
                )
    return [a for a in found if a is not None]
