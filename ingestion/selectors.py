"""Reads for the ingestion app."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar, cast

from django.db import connection
from django.db.models import Model, Q, QuerySet

from .models import ACTION_ROLE, ROLE_RANK, Dataset, DatasetAction, DatasetGrant, DatasetRole, SchemaVersion
from .schema import SchemaSpec, schema_parse

_M = TypeVar("_M", bound=Model)


@lru_cache(maxsize=128)
def _spec(version_id: int, checksum: str) -> SchemaSpec:
    return schema_parse(SchemaVersion.objects.get(pk=version_id).definition, stored=True)


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


def _columns(model: type[Model], alias: str) -> str:
    quote = connection.ops.quote_name
    # A concrete field always has a column (only virtual fields have none).
    return ", ".join(f"{alias}.{quote(cast(str, f.column))}" for f in model._meta.concrete_fields)


def _instance(model: type[_M], values: tuple[Any, ...]) -> _M:
    """A model instance from its columns as read by a hand-written query, converted as the ORM would."""
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        col = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(col) + field.get_db_converters(connection):
            value = convert(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def dataset_visible_get(user: Any, slug: str) -> Dataset | None:
    """The dataset ``slug`` with its current schema, if ``user`` can see it: one of ``datasets_visible_to(user)``.

    The same rules in one hand-written statement, because this runs on every
    request of the records API and building the ORM query cost more than
    running it: a grant of any role, to the user or to one of their groups;
    superusers see every dataset; anonymous and inactive users none.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    quote = connection.ops.quote_name
    dataset_table = quote(Dataset._meta.db_table)
    schema_table = quote(SchemaVersion._meta.db_table)
    sql = (
        f"SELECT {_columns(Dataset, 'd')}, {_columns(SchemaVersion, 's')} FROM {dataset_table} d "
        f"LEFT JOIN {schema_table} s ON s.id = d.current_schema_id WHERE d.slug = %s"
    )
    params: list[Any] = [slug]
    if not user.is_superuser:
        roles = _roles_at_least(DatasetRole.VIEWER)
        member_of = quote(user.groups.through._meta.db_table)
        sql += (
            f" AND EXISTS (SELECT 1 FROM {quote(DatasetGrant._meta.db_table)} g WHERE g.dataset_id = d.id"
            f" AND g.role IN ({', '.join(['%s'] * len(roles))}) AND (g.user_id = %s"
            f" OR g.group_id IN (SELECT m.group_id FROM {member_of} m WHERE m.user_id = %s)))"
        )
        params += [*roles, user.pk, user.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(Dataset._meta.concrete_fields)
    dataset = _instance(Dataset, row[:width])
    dataset.current_schema = _instance(SchemaVersion, row[width:]) if dataset.current_schema_id else None
    return dataset


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


def role_at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` (None: no grant) includes ``needed``."""
    return role is not None and ROLE_RANK[DatasetRole(role)] >= ROLE_RANK[DatasetRole(needed)]


def action_role(action: str) -> DatasetRole:
    """The role an action on a dataset needs (``ACTION_ROLE``)."""
    return ACTION_ROLE[DatasetAction(action)]


def dataset_may(user: Any, dataset: Dataset, action: str) -> bool:
    """May ``user`` do ``action`` on ``dataset``? The one question the API and the console both ask.

    A grant of the action's role (or a higher one), to the user or one of
    their groups; superusers may do everything; anonymous and inactive users
    nothing.
    """
    return role_at_least(dataset_role_for(user, dataset), action_role(action))


def dataset_actions_for(user: Any, dataset: Dataset) -> set[str]:
    """Every action ``user`` may do on ``dataset`` (one query), for pages that show several buttons."""
    role = dataset_role_for(user, dataset)
    return {action for action, needed in ACTION_ROLE.items() if role_at_least(role, needed)}


def restrict(
    queryset: QuerySet[Any], user: Any, action: str = DatasetAction.VIEW, *, via: str | None = "dataset"
) -> QuerySet[Any]:
    """``queryset`` narrowed to the rows of datasets on which ``user`` may do ``action``.

    ``via`` is the path from the queryset's model to its dataset
    (``"run__dataset"`` for rejected rows), None for a queryset of datasets.
    The API's viewsets and the console's pages both narrow their querysets
    here, so a user sees the same runs, files and rows through either door.
    """
    if getattr(user, "is_superuser", False) and user.is_active:
        return queryset
    allowed = datasets_visible_to(user, action_role(action))
    if via is None:
        return queryset.filter(pk__in=allowed.values("pk"))
    return queryset.filter(**{f"{via}__in": allowed})


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
