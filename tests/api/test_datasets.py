"""Datasets: list, create, retrieve, update, delete; the schema in schema-file format."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from ingestion.schema import schema_parse
from processing.models import Run
from tests.conftest import SALES_SCHEMA
from tests.factories import UserFactory

from .conftest import API, bearer, error_of

pytestmark = pytest.mark.django_db


def new_schema(slug: str = "events", **changes: Any) -> dict[str, Any]:
    schema = copy.deepcopy(SALES_SCHEMA)
    schema.update(slug=slug, name="Events", **changes)
    return schema


@pytest.fixture
def creator(db: None) -> APIClient:
    user = UserFactory(username="creator")
    user.user_permissions.add(Permission.objects.get(codename="add_dataset"))
    return bearer(user)


def test_a_user_lists_only_the_datasets_they_have_a_grant_on(as_viewer: APIClient, as_stranger: APIClient) -> None:
    viewer_sees = [d["slug"] for d in as_viewer.get(f"{API}/datasets/").json()["results"]]
    stranger_sees = [d["slug"] for d in as_stranger.get(f"{API}/datasets/").json()["results"]]

    assert viewer_sees == ["sales"]
    assert stranger_sees == ["other"]


def test_a_superuser_sees_every_dataset(sales: Dataset, other: Dataset) -> None:
    admin = UserFactory(username="root", is_superuser=True)

    body = bearer(admin).get(f"{API}/datasets/").json()

    assert [(d["slug"], d["role"]) for d in body["results"]] == [("other", "manager"), ("sales", "manager")]


def test_a_dataset_comes_out_as_its_schema_file(as_viewer: APIClient) -> None:
    body = as_viewer.get(f"{API}/datasets/sales/").json()

    assert body["role"] == "viewer"
    assert body["schema_version"] == 1
    assert body["links"]["records"].endswith("/api/v1/datasets/sales/records/")
    document = {k: v for k, v in body.items() if k not in ("schema_version", "role", "url", "links")}
    document = {k: v for k, v in document.items() if k not in ("created_at", "updated_at")}
    assert schema_parse(document) == schema_parse(copy.deepcopy(SALES_SCHEMA))


@pytest.mark.parametrize(
    ("persona", "status"), [("viewer", 200), ("ingester", 200), ("stranger", 404)], indirect=["persona"]
)
def test_retrieve_is_for_anyone_with_a_grant(persona: APIClient, status: int) -> None:
    assert persona.get(f"{API}/datasets/sales/").status_code == status


def test_a_document_read_back_unchanged_keeps_the_schema_version(as_manager: APIClient) -> None:
    document = as_manager.get(f"{API}/datasets/sales/").json()

    response = as_manager.put(f"{API}/datasets/sales/", document, format="json")

    assert response.status_code == 200
    assert response.json()["schema_version"] == 1


def test_changing_the_fields_creates_a_new_schema_version(as_manager: APIClient) -> None:
    document = as_manager.get(f"{API}/datasets/sales/").json()
    document["fields"].append({"name": "channel", "type": "string"})

    response = as_manager.put(f"{API}/datasets/sales/", document, format="json")

    assert response.status_code == 200
    assert response.json()["schema_version"] == 2
    assert response.json()["fields"][-1] == {"name": "channel", "type": "string"}


def test_patch_changes_only_the_keys_given(as_manager: APIClient) -> None:
    response = as_manager.patch(f"{API}/datasets/sales/", {"name": "Renamed", "reject_threshold": 0.5}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["reject_threshold"], body["schema_version"]) == ("Renamed", 0.5, 1)
    assert len(body["fields"]) == len(SALES_SCHEMA["fields"])


def test_the_slug_cannot_change(as_manager: APIClient) -> None:
    response = as_manager.patch(f"{API}/datasets/sales/", {"slug": "renamed"}, format="json")

    assert response.status_code == 400
    assert "slug" in error_of(response)["details"]


def test_an_invalid_schema_reports_every_problem(as_manager: APIClient) -> None:
    document = new_schema("sales")
    document["fields"][0]["requird"] = True
    document["fields"][1]["type"] = "timestamp"

    response = as_manager.put(f"{API}/datasets/sales/", document, format="json")

    assert response.status_code == 400
    messages = error_of(response)["details"]["schema"]
    assert any("requird" in m for m in messages)
    assert any("timestamp" in m for m in messages)


@pytest.mark.parametrize(
    ("persona", "status"), [("viewer", 403), ("ingester", 403), ("stranger", 404)], indirect=["persona"]
)
def test_only_managers_change_a_dataset(persona: APIClient, status: int) -> None:
    assert persona.patch(f"{API}/datasets/sales/", {"name": "x"}, format="json").status_code == status
    assert persona.put(f"{API}/datasets/sales/", new_schema("sales"), format="json").status_code == status
    assert persona.delete(f"{API}/datasets/sales/").status_code == status
    assert Dataset.objects.get(slug="sales").name == "Sales events"


def test_creating_a_dataset_needs_the_add_dataset_permission(as_manager: APIClient) -> None:
    response = as_manager.post(f"{API}/datasets/", new_schema(), format="json")

    assert response.status_code == 403
    assert not Dataset.objects.filter(slug="events").exists()


def test_the_creator_of_a_dataset_becomes_its_manager(creator: APIClient) -> None:
    response = creator.post(f"{API}/datasets/", new_schema(), format="json")

    assert response.status_code == 201
    assert response["Location"].endswith("/api/v1/datasets/events/")
    assert response.json()["role"] == "manager"
    assert DatasetGrant.objects.get(dataset__slug="events").role == DatasetRole.MANAGER


def test_creating_an_existing_slug_is_a_conflict(creator: APIClient, sales: Dataset) -> None:
    response = creator.post(f"{API}/datasets/", new_schema("sales"), format="json")

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert Dataset.objects.get(slug="sales").name == "Sales events"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a schema",
        {"slug": "x"},
        {**new_schema(), "name": "n" * 201},
        {**new_schema(), "reject_threshold": "half"},
        {**new_schema(), "fields": [{"name": "id", "type": "string", "required": True, "source": "s" * 201}]},
    ],
)
def test_bad_documents_are_a_400(creator: APIClient, body: Any) -> None:
    response = creator.post(f"{API}/datasets/", body, format="json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_an_empty_dataset_can_be_deleted(creator: APIClient) -> None:
    creator.post(f"{API}/datasets/", new_schema(), format="json")

    response = creator.delete(f"{API}/datasets/events/")

    assert response.status_code == 204
    assert not Dataset.objects.filter(slug="events").exists()


def test_a_dataset_that_received_files_is_not_deleted(as_manager: APIClient, loaded: Run) -> None:
    response = as_manager.delete(f"{API}/datasets/sales/")

    assert response.status_code == 409
    assert "received 1 file" in error_of(response)["message"]
    assert Dataset.objects.filter(slug="sales").exists()


def test_an_unknown_slug_is_a_json_404(as_manager: APIClient) -> None:
    response = as_manager.get(f"{API}/datasets/nope/")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_the_list_is_paged_by_cursor(sales: Dataset, other: Dataset) -> None:
    client = bearer(UserFactory(username="root", is_superuser=True))

    first = client.get(f"{API}/datasets/", {"page_size": 1}).json()
    second = client.get(first["next"]).json()

    assert [d["slug"] for d in first["results"]] == ["other"]
    assert [d["slug"] for d in second["results"]] == ["sales"]
    assert second["next"] is None


def test_a_bad_schema_option_is_named_once_in_the_error_message(creator: APIClient) -> None:
    response = creator.post(f"{API}/datasets/", {**new_schema(), "detect_delimiter": "yes"}, format="json")

    assert response.status_code == 400
    assert error_of(response)["message"] == "schema: 'detect_delimiter' must be true or false"


def test_schema_messages_end_without_doubled_punctuation(creator: APIClient) -> None:
    body = {**new_schema(), "encoding": "rot13", "detect_delimiter": "yes"}
    response = creator.post(f"{API}/datasets/", body, format="json")

    messages = error_of(response)["details"]["schema"]
    assert ".;" not in "; ".join(messages)
    assert "schema: 'encoding': 'rot13' is not a text encoding a CSV file can be written in" in messages
