"""django-q2 entry points of the API: call a service, nothing else."""

from __future__ import annotations

from .tokens import tokens_flush_expired


def flush_expired_tokens() -> dict[str, int]:
    """Scheduled daily (migration ``api.0001``): remove expired refresh tokens from the outstanding list."""
    return tokens_flush_expired()
