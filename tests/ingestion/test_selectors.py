"""Who sees which dataset: ``dataset_visible_get`` against ``datasets_visible_to``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.forms.models import model_to_dict

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from ingestion.schema import schema_parse
from ingestion.selectors import dataset_visible_get, datasets_visible_to, schema_spec
from ingestion.services.datasets import dataset_apply
from tests.conftest import SALES_SCHEMA
from tests.factories import UserFactory


@pytest.fixture
def other(db: None) -> Dataset:
    schema = {**json.loads(json.dumps(SALES_SCHEMA)), "slug": "other", "name": "Someone else's sales"}
    return dataset_apply(spec=schema_parse(schema)).dataset


def visible_slugs(user: Any) -> set[str]:
    return set(datasets_visible_to(user).values_list("slug", flat=True))


def assert_same_rules(user: Any, *slugs: str) -> None:
    for slug in slugs:
        found = dataset_visible_get(user, slug)
        assert (found is not None) == (slug in visible_slugs(user)), slug


@pytest.mark.parametrize("role", list(DatasetRole))
def test_a_direct_grant_of_any_role_shows_the_dataset_and_no_other(sales: Dataset, other: Dataset, role: str) -> None:
    user = UserFactory()
    DatasetGrant.objects.create(dataset=sales, user=user, role=role)
    assert dataset_visible_get(user, "sales") == sales
    assert dataset_visible_get(user, "other") is None
    assert_same_rules(user, "sales", "other", "missing")


def test_a_grant_to_one_of_the_users_groups_shows_the_dataset(sales: Dataset, other: Dataset) -> None:
    user = UserFactory()
    analysts, unrelated = Group.objects.create(name="analysts"), Group.objects.create(name="unrelated")
    user.groups.add(analysts)
    DatasetGrant.objects.create(dataset=sales, group=analysts, role=DatasetRole.VIEWER)
    DatasetGrant.objects.create(dataset=other, group=unrelated, role=DatasetRole.MANAGER)
    assert dataset_visible_get(user, "sales") == sales
    assert dataset_visible_get(user, "other") is None
    assert_same_rules(user, "sales", "other")


def test_a_stranger_sees_nothing(sales: Dataset, other: Dataset) -> None:
    user = UserFactory()
    DatasetGrant.objects.create(dataset=other, user=UserFactory(), role=DatasetRole.MANAGER)
    assert dataset_visible_get(user, "sales") is None
    assert dataset_visible_get(user, "other") is None


def test_a_superuser_sees_every_dataset_without_grants(sales: Dataset, other: Dataset) -> None:
    user = UserFactory(is_superuser=True)
    assert dataset_visible_get(user, "sales") == sales
    assert dataset_visible_get(user, "other") == other
    assert dataset_visible_get(user, "missing") is None
    assert_same_rules(user, "sales", "other", "missing")


@pytest.mark.parametrize("superuser", [False, True])
def test_an_inactive_user_sees_nothing(sales: Dataset, superuser: bool) -> None:
    user = UserFactory(is_active=False, is_superuser=superuser)
    DatasetGrant.objects.create(dataset=sales, user=user, role=DatasetRole.MANAGER)
    assert dataset_visible_get(user, "sales") is None
    assert_same_rules(user, "sales")


def test_an_anonymous_user_sees_nothing(sales: Dataset) -> None:
    assert dataset_visible_get(AnonymousUser(), "sales") is None


def test_it_gives_the_dataset_and_its_current_schema_as_the_orm_reads_them(sales: Dataset) -> None:
    sales.notify_webhooks = ["https://example.com/hook"]
    sales.reject_threshold = 0.25
    sales.notify_on_success = True
    sales.save()
    user = UserFactory(is_superuser=True)
    found = dataset_visible_get(user, "sales")
    expected = Dataset.objects.select_related("current_schema").get(slug="sales")
    assert found is not None
    assert model_to_dict(found) == model_to_dict(expected)
    assert (found.created_at, found.updated_at) == (expected.created_at, expected.updated_at)
    assert model_to_dict(found.current_schema) == model_to_dict(expected.current_schema)
    assert found.current_schema.created_at == expected.current_schema.created_at
    assert isinstance(found.current_schema.definition, dict)


def test_a_dataset_without_a_schema_comes_without_one(db: None, django_assert_num_queries: Any) -> None:
    Dataset.objects.create(slug="empty", name="Empty", key_fields=[])
    user = UserFactory(is_superuser=True)
    with django_assert_num_queries(1):
        found = dataset_visible_get(user, "empty")
        assert found is not None
        assert found.current_schema is None


@pytest.mark.django_db
def test_a_schema_stored_under_looser_limits_still_reads_back(sales: Dataset) -> None:
    # As an earlier release could store it: integers past 64 bits, a long description, many choices.
    version = sales.current_schema
    definition = json.loads(json.dumps(version.definition))
    definition["fields"][0]["max_length"] = 10**40
    definition["fields"][4]["max"] = 10**30
    definition["fields"][4]["min"] = -1e300
    definition["fields"][2]["choices"] = [f"c{i}" for i in range(20_000)]
    definition["description"] = "d" * 50_000
    version.definition = definition
    version.checksum = "older"
    version.save(update_fields=["definition", "checksum"])

    spec = schema_spec(version)

    assert spec.fields[0].constraints["max_length"] == 10**40
    # PostgreSQL's jsonb gives -1e300 back as the integer it spells.
    assert (float(spec.fields[4].constraints["min"]), spec.fields[4].constraints["max"]) == (-1e300, 10**30)
    assert len(spec.fields[2].constraints["choices"]) == 20_000
    assert len(spec.description) == 50_000
