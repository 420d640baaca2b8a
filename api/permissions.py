"""Who may do what: per-dataset roles, and the 404 rule.

A user without any grant on a dataset must not learn that it exists, so
every lookup goes through ``datasets_visible_to`` (or, for one dataset,
``dataset_visible_get``: the same rules) and answers 404; a user
who can see the dataset but lacks the role for an action gets 403.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission

from ingestion.models import Dataset, DatasetRole
from ingestion.selectors import action_role, dataset_role_for, dataset_visible_get, role_at_least


def require_role(user: Any, dataset: Dataset, needed: str) -> str:
    """The user's role on a dataset they can see; 403 when it is below ``needed``."""
    role = dataset_role_for(user, dataset)
    if not role_at_least(role, needed):
        raise PermissionDenied(f"This needs the {needed} role on dataset {dataset.slug!r}; yours is {role}.")
    assert role is not None
    return role


def require_action(user: Any, dataset: Dataset, action: str) -> str:
    """403 unless ``user`` may do ``action`` on ``dataset`` (``ingestion.selectors.dataset_may``'s rule)."""
    return require_role(user, dataset, action_role(action))


def dataset_for(user: Any, slug: str, needed: str = DatasetRole.VIEWER) -> Dataset:
    """The dataset ``slug`` if ``user`` has a grant on it (404 otherwise), checked for the ``needed`` role (403)."""
    dataset = dataset_visible_get(user, slug)
    if dataset is None:
        raise NotFound(f"No dataset {slug!r}.")
    if needed != DatasetRole.VIEWER:
        require_role(user, dataset, needed)
    return dataset


class CanCreateDatasets(BasePermission):
    """Superusers, and users with the ``ingestion.add_dataset`` permission (directly or by group)."""

    message = "Creating datasets needs the 'ingestion.add_dataset' permission."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or user.has_perm("ingestion.add_dataset")))
