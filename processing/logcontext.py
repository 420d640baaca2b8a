"""The run a log line belongs to: set while a run is processed, read by the log filter."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

run_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("run_id", default=None)


@contextmanager
def run_context(run_id: int) -> Iterator[None]:
    """Tag every log line written inside the block with ``run_id``."""
    token = run_id_var.set(run_id)
    try:
        yield
    finally:
        run_id_var.reset(token)
