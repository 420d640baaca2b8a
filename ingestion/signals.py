"""Audit trail entries for logins (admin sessions and API tokens) and failed attempts."""

from __future__ import annotations

from typing import Any

from .audit import audit_record
from .models import AuditAction


def audit_login(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    audit_record(action=AuditAction.LOGIN, actor=user, details={"via": "api" if request is None else "session"})


def audit_login_failed(
    sender: Any, credentials: dict[str, Any] | None = None, request: Any = None, **kwargs: Any
) -> None:
    # Only the username: Django already masks the password in ``credentials``.
    username = str((credentials or {}).get("username", ""))[:150]
    audit_record(action=AuditAction.LOGIN_FAILED, actor_name=username, details={"username": username})
