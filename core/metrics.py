"""Metrics any layer may count; ``dataflow.metrics`` serves them at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter

# Failed calls to the shared cache (Redis), by what was being done; the
# caller carries on without it (api/throttling.py counts per process then).
CACHE_ERRORS = Counter("dataflow_cache_errors_total", "Calls to the shared cache that failed.", ["operation"])
