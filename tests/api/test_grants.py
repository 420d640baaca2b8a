"""Grants: managers give, change and take away roles; a dataset keeps a manager."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from tests.factories import UserFactory

from .conftest import API, bearer, error_of

pytestmark = pytest.mark.django_db
GRANTS = f"{API}/datasets/sales/grants/"


def test_a_manager_lists_the_grants(as_manager: APIClient, viewer: Any, ingester: Any) -> None:
    body = as_manager.get(GRANTS).json()

    assert [(g["user"], g["role"]) for g in body["results"]] == [
        ("manager", "manager"),
        ("viewer", "viewer"),
        ("ingester", "ingester"),
    ]


def test_a_manager_grants_a_role_to_a_user_who_then_sees_the_dataset(as_manager: APIClient) -> None:
    newcomer = UserFactory(username="newcomer")
    assert bearer(newcomer).get(f"{API}/datasets/sales/").status_code == 404

    response = as_manager.post(GRANTS, {"user": "newcomer", "role": "viewer"}, format="json")

    assert response.status_code == 201
    assert response.json()["user"] == "newcomer"
    assert bearer(newcomer).get(f"{API}/datasets/sales/").status_code == 200


def test_granting_again_replaces_the_role(as_manager: APIClient, viewer: Any) -> None:
    response = as_manager.post(GRANTS, {"user": "viewer", "role": "ingester"}, format="json")

    assert response.status_code == 200
    assert DatasetGrant.objects.get(user=viewer).role == DatasetRole.INGESTER


def test_a_group_grant_gives_its_members_the_role(as_manager: APIClient) -> None:
    group = Group.objects.create(name="analysts")
    member = UserFactory(username="member")
    member.groups.add(group)

    as_manager.post(GRANTS, {"group": "analysts", "role": "ingester"}, format="json")

    assert bearer(member).get(f"{API}/datasets/sales/").json()["role"] == "ingester"


@pytest.mark.parametrize(
    "body",
    [
        {"role": "viewer"},
        {"user": "viewer", "group": "analysts", "role": "viewer"},
        {"user": "nobody", "role": "viewer"},
        {"group": "nobody", "role": "viewer"},
        {"user": "viewer", "role": "owner"},
        {"user": ["viewer"], "role": "viewer"},
    ],
)
def test_bad_grants_are_a_400(as_manager: APIClient, viewer: Any, body: dict[str, Any]) -> None:
    response = as_manager.post(GRANTS, body, format="json")

    assert response.status_code == 400
    error_of(response)


def test_a_manager_changes_and_removes_a_grant(as_manager: APIClient, viewer: Any) -> None:
    grant = DatasetGrant.objects.get(user=viewer)

    changed = as_manager.patch(f"{GRANTS}{grant.pk}/", {"role": "ingester"}, format="json")
    removed = as_manager.delete(f"{GRANTS}{grant.pk}/")

    assert changed.status_code == 200
    assert changed.json()["role"] == "ingester"
    assert removed.status_code == 204
    assert bearer(viewer).get(f"{API}/datasets/sales/").status_code == 404


def test_the_last_manager_grant_cannot_be_removed_or_lowered(as_manager: APIClient, manager: Any) -> None:
    grant = DatasetGrant.objects.get(user=manager)

    lowered = as_manager.patch(f"{GRANTS}{grant.pk}/", {"role": "viewer"}, format="json")
    removed = as_manager.delete(f"{GRANTS}{grant.pk}/")

    assert (lowered.status_code, removed.status_code) == (409, 409)
    assert DatasetGrant.objects.get(user=manager).role == DatasetRole.MANAGER


@pytest.mark.parametrize(
    ("persona", "status"), [("ingester", 403), ("viewer", 403), ("stranger", 404)], indirect=["persona"]
)
def test_only_managers_see_and_change_grants(persona: APIClient, status: int, manager: Any) -> None:
    grant = DatasetGrant.objects.get(user=manager)

    assert persona.get(GRANTS).status_code == status
    assert persona.post(GRANTS, {"user": "stranger", "role": "manager"}, format="json").status_code == status
    assert persona.get(f"{GRANTS}{grant.pk}/").status_code == status
    assert persona.patch(f"{GRANTS}{grant.pk}/", {"role": "viewer"}, format="json").status_code == status
    assert persona.delete(f"{GRANTS}{grant.pk}/").status_code == status
    assert DatasetGrant.objects.get(pk=grant.pk).role == DatasetRole.MANAGER


def test_a_grant_of_another_dataset_is_a_404(as_manager: APIClient, stranger: Any, other: Dataset) -> None:
    foreign = DatasetGrant.objects.get(dataset=other)

    assert as_manager.get(f"{GRANTS}{foreign.pk}/").status_code == 404
    assert as_manager.delete(f"{GRANTS}{foreign.pk}/").status_code == 404
    assert DatasetGrant.objects.filter(pk=foreign.pk).exists()
