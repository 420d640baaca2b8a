"""Per-request context that services may read without knowing about requests (no model imports)."""

from __future__ import annotations

import contextvars

# Set by the project's request middleware (dataflow.logging.RequestIdMiddleware).
client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)
