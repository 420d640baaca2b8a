"""Every endpoint for each persona: manager, ingester, viewer of ``sales``, and a stranger to it.

The stranger manages another dataset, so they are a real user with real
rights; on ``sales`` they must get 404 everywhere, and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from ingestion.models import Dataset, DatasetGrant, RawFile
from processing.models import Run, RunStatus
from tests.conftest import sales_row
from tests.factories import UserFactory
from tests.records import records_total

from .conftest import API, error_of, sales_csv

pytestmark = pytest.mark.django_db


@dataclass
class World:
    loaded: Run
    failed: Run
    queued: Run


@pytest.fixture
def world(sales: Dataset, loaded: Run, ingest: Callable[..., Run], as_ingester: APIClient) -> World:
    UserFactory(username="newcomer")
    failed = ingest(sales, "id,timestamp\nS1,2024-01-01\n")
    upload = SimpleUploadedFile("q.csv", sales_csv([sales_row(77)]).encode(), content_type="text/csv")
    response = as_ingester.post(f"{API}/datasets/sales/uploads/", {"file": upload}, format="multipart")
    return World(loaded=loaded, failed=failed, queued=Run.objects.get(pk=response.json()["id"]))


def upload(dry_run: bool = False) -> dict[str, Any]:
    file = SimpleUploadedFile("p.csv", sales_csv([sales_row(50)]).encode(), content_type="text/csv")
    return {"data": {"file": file}, "format": "multipart", "query": "?dry_run=true" if dry_run else ""}


def json_body(data: Any) -> dict[str, Any]:
    return {"data": data, "format": "json", "query": ""}


ALL_READ = {"manager": 200, "ingester": 200, "viewer": 200}
SCHEMA_DOC = {"name": "Sales events", "description": "renamed by a test"}

# (name, method, path (formatted with the world), body, {persona: status})
CASES: list[tuple[str, str, str, Callable[[], dict[str, Any]] | None, dict[str, int]]] = [
    ("dataset", "get", "/datasets/sales/", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("dataset-patch", "patch", "/datasets/sales/", lambda: json_body(SCHEMA_DOC), {"manager": 200}),
    ("dataset-delete", "delete", "/datasets/sales/", None, {"manager": 409}),
    ("records", "get", "/datasets/sales/records/", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("records-filter", "get", "/datasets/sales/records/?quantity__gte=1", None, ALL_READ),
    ("records-run", "get", "/datasets/sales/records/?run={loaded}", None, ALL_READ),
    ("record", "get", "/datasets/sales/records/S1/", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("upload", "post", "/datasets/sales/uploads/", upload, {"manager": 202, "ingester": 202}),
    ("dry-run", "post", "/datasets/sales/uploads/", lambda: upload(dry_run=True), {"manager": 200, "ingester": 200}),
    ("runs-filter", "get", "/runs/?dataset=sales", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("run", "get", "/runs/{loaded}/", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("rejected-rows", "get", "/runs/{loaded}/rejected-rows/", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("run-profile", "get", "/runs/{loaded}/profile/", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("run-checks", "get", "/runs/{loaded}/checks/", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("retry", "post", "/runs/{failed}/retry/", None, {"manager": 202, "ingester": 202}),
    ("cancel", "post", "/runs/{queued}/cancel/", None, {"manager": 200, "ingester": 200}),
    ("export", "get", "/datasets/sales/export/?format=json", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("openapi", "get", "/datasets/sales/openapi.json", None, {"manager": 200, "ingester": 200, "viewer": 200}),
    ("grants", "get", "/datasets/sales/grants/", None, {"manager": 200}),
    (
        "grant",
        "post",
        "/datasets/sales/grants/",
        lambda: json_body({"user": "newcomer", "role": "viewer"}),
        {"manager": 201},
    ),
]
PERSONAS = ["manager", "ingester", "viewer", "stranger"]


def expected(statuses: dict[str, int], persona: str) -> int:
    """Listed statuses win; a stranger gets 404 and anyone else with a grant 403."""
    return statuses.get(persona, 404 if persona == "stranger" else 403)


def state(world: World) -> tuple[Any, ...]:
    return (
        Dataset.objects.get(slug="sales").description,
        records_total(),
        RawFile.objects.count(),
        Run.objects.count(),
        Run.objects.get(pk=world.queued.pk).status,
        DatasetGrant.objects.count(),
    )


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
@pytest.mark.parametrize(("name", "method", "path", "body", "statuses"), CASES, ids=[c[0] for c in CASES])
def test_each_persona_gets_exactly_its_rights(
    request: pytest.FixtureRequest,
    persona: APIClient,
    world: World,
    name: str,
    method: str,
    path: str,
    body: Callable[[], dict[str, Any]] | None,
    statuses: dict[str, int],
) -> None:
    who = request.node.callspec.params["persona"]
    url = API + path.format(loaded=world.loaded.pk, failed=world.failed.pk, queued=world.queued.pk)
    before = state(world)
    kwargs = body() if body else {"query": ""}

    response = getattr(persona, method)(url + kwargs.pop("query"), **kwargs)

    want = expected(statuses, who)
    assert response.status_code == want, (who, name, response.content)
    if want >= 400:
        error_of(response)
        assert state(world) == before, f"{who} changed something with a refused {name}"


def test_a_stranger_sees_none_of_it_in_lists(as_stranger: APIClient, world: World, other_run: Run) -> None:
    datasets = as_stranger.get(f"{API}/datasets/").json()["results"]
    runs = as_stranger.get(f"{API}/runs/").json()["results"]

    assert [d["slug"] for d in datasets] == ["other"]
    assert [r["id"] for r in runs] == [other_run.pk]


def test_the_queued_run_is_still_queued_for_the_matrix(world: World) -> None:
    assert world.queued.status == RunStatus.QUEUED
