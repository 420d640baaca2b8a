"""Who may do what on a dataset: setting and removing grants, keeping a manager."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from ..audit import audit_record
from ..models import AuditAction, Dataset, DatasetGrant, DatasetRole


class DatasetConflict(ValidationError):
    """The dataset's state does not allow the change: it exists, holds data, or would lose its last manager."""


def _dataset_keeps_a_manager(dataset: Dataset, *, losing: DatasetGrant) -> None:
    others = DatasetGrant.objects.filter(dataset=dataset, role=DatasetRole.MANAGER).exclude(pk=losing.pk)
    if not others.exists():
        raise _last_manager(dataset)


def dataset_grants_check(dataset: Dataset, *, managers_left: bool) -> None:
    """The rule every change of a dataset's grants keeps: a dataset that has a manager keeps one.

    For a form that changes several grants at once (the console), checked on
    what it would leave before anything is saved.
    """
    if not managers_left and DatasetGrant.objects.filter(dataset=dataset, role=DatasetRole.MANAGER).exists():
        raise _last_manager(dataset)


def _last_manager(dataset: Dataset) -> DatasetConflict:
    return DatasetConflict(
        f"This is the last manager grant of dataset {dataset.slug!r}; grant manager to someone else first."
    )


def dataset_grantee_check(*, user: Any, group: Any) -> None:
    if (user is None) == (group is None):
        raise ValidationError("A grant is for exactly one user or one group.")


@transaction.atomic
def dataset_grant_set(
    *, dataset: Dataset, role: str, user: Any = None, group: Any = None, actor: Any = None
) -> tuple[DatasetGrant, bool]:
    """Give a user or a group (exactly one) a role on a dataset, replacing any role they had.

    Returns the grant and whether it was created. Taking the manager role
    away from the last manager is a ``DatasetConflict``.
    """
    dataset_grantee_check(user=user, group=group)
    if role not in DatasetRole.values:
        raise ValidationError(f"Unknown role {role!r} (expected one of {', '.join(DatasetRole.values)}).")
    # Serialise grant changes per dataset, so two requests cannot remove the last two managers.
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    who = {"user": user} if user is not None else {"group": group}
    grant = DatasetGrant.objects.filter(dataset=dataset, **who).first()
    created = grant is None
    if grant is None:
        grant = DatasetGrant.objects.create(dataset=dataset, role=role, **who)
    else:
        if grant.role == DatasetRole.MANAGER and role != DatasetRole.MANAGER:
            _dataset_keeps_a_manager(dataset, losing=grant)
        grant.role = role
        grant.save(update_fields=["role"])
    grantee = f"user:{user.get_username()}" if user is not None else f"group:{group.name}"
    audit_record(
        action=AuditAction.GRANT_CHANGED,
        actor=actor,
        dataset=dataset,
        obj=grant,
        details={"grantee": grantee, "role": role, "created": created},
    )
    return grant, created


@transaction.atomic
def dataset_grant_delete(*, grant: DatasetGrant, actor: Any = None) -> None:
    """Remove a grant; removing the last manager grant is a ``DatasetConflict``."""
    Dataset.objects.select_for_update().filter(pk=grant.dataset_id).first()
    if grant.role == DatasetRole.MANAGER:
        _dataset_keeps_a_manager(grant.dataset, losing=grant)
    if grant.user is not None:
        grantee = f"user:{grant.user.get_username()}"
    else:
        assert grant.group is not None  # a grant names a user or a group (grant_user_xor_group)
        grantee = f"group:{grant.group.name}"
    details = {"grantee": grantee, "role": grant.role, "grant": grant.pk}
    grant.delete()
    audit_record(action=AuditAction.GRANT_DELETED, actor=actor, dataset=grant.dataset, details=details)
