"""The audit trail: one function that every service calls when something worth tracing happens."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db import models

from core.context import client_ip_var

from .models import AuditEvent, Dataset


def _ip() -> str | None:
    value = client_ip_var.get()
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def audit_record(
    *,
    action: str,
    actor: Any = None,
    actor_name: str = "",
    dataset: Dataset | None = None,
    obj: models.Model | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event. ``actor`` may be a user, None (a command or schedule) or anonymous."""
    user = actor if getattr(actor, "pk", None) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_name=(user.get_username() if user else actor_name)[:150],
        action=action,
        dataset=dataset,
        dataset_slug=dataset.slug if dataset else "",
        object_type=(obj._meta.model_name or "") if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        details=details or {},
        ip=_ip(),
    )
