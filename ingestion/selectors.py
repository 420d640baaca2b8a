"""Reads for the ingestion app."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.db.models import Q, QuerySet

from .models import ROLE_RANK, Dataset, DatasetGrant, DatasetRole, SchemaVersion
from .schema import SchemaSpec, schema_parse


@lru_cache(maxsize=128)
def _spec(version_id: int, checksum: str) -> SchemaSpec:
    return schema_parse(SchemaVersion.objects.get(pk=version_id).definition)


def schema_spec(version: SchemaVersion) -> SchemaSpec:
    """The parsed schema of a version (versions are immutable, so it is cached)."""
    return _spec(version.pk, version.checksum)


def dataset_get(slug: str) -> Dataset:
    return Dataset.objects.select_related("current_schema").get(slug=slug)


def _roles_at_least(role: str) -> list[str]:
    return [r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[DatasetRole(role)]]


def datasets_visible_to(user: Any, role: str = DatasetRole.VIEWER) -> QuerySet[Dataset]:
    """Datasets on which ``user`` holds at least ``role`` (directly or via a group).

    Superusers see every dataset; anonymous and inactive users none.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Dataset.objects.none()
    if user.is_superuser:
        return Dataset.objects.all()
    grants = DatasetGrant.objects.filter(
        Q(user=user) | Q(group__in=user.groups.all()), role__in=_roles_at_least(role)
    ).values("dataset_id")
    return Dataset.objects.filter(pk__in=grants)


def dataset_role_for(user: Any, dataset: Dataset) -> str | None:
    """The highest role ``user`` holds on ``dataset``, or None."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        return DatasetRole.MANAGER
    roles = DatasetGrant.objects.filter(Q(user=user) | Q(group__in=user.groups.all()), dataset=dataset).values_list(
        "role", flat=True
    )
    return max(roles, key=lambda r: ROLE_RANK[DatasetRole(r)], default=None)


def dataset_roles_for(user: Any, datasets: list[Dataset]) -> dict[int, str]:
    """The highest role ``user`` holds on each of ``datasets`` (by id), in one query."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return {}
    if user.is_superuser:
        return {d.pk: DatasetRole.MANAGER for d in datasets}
    roles: dict[int, str] = {}
    grants = DatasetGrant.objects.filter(
        Q(user=user) | Q(group__in=user.groups.all()), dataset__in=[d.pk for d in datasets]
    ).values_list("dataset_id", "role")
    for dataset_id, role in grants:
        current = roles.get(dataset_id)
        if current is None or ROLE_RANK[DatasetRole(role)] > ROLE_RANK[DatasetRole(current)]:
            roles[dataset_id] = role
    return roles


def dataset_grants_list(dataset: Dataset) -> QuerySet[DatasetGrant]:
    """A dataset's grants, in the order they were given."""
    return DatasetGrant.objects.filter(dataset=dataset).select_related("user", "group").order_by("pk")
