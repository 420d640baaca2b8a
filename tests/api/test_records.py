"""Records: keyset pages, typed filters, ordering, one record with its lineage."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from processing.models import Run
from tests.factories import UserFactory

from .conftest import API, bearer, error_of, sales_csv

pytestmark = pytest.mark.django_db
RECORDS = f"{API}/datasets/sales/records/"


def keys(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["key"] for r in response.json()["results"]]


def walk(client: APIClient, params: dict[str, Any]) -> list[str]:
    """Every key, following ``next`` links."""
    seen: list[str] = []
    body = client.get(RECORDS, params).json()
    while True:
        seen += [r["key"] for r in body["results"]]
        if not body["next"]:
            return seen
        body = client.get(body["next"]).json()


def test_records_come_in_key_order_with_their_values(as_viewer: APIClient, loaded: Run) -> None:
    response = as_viewer.get(RECORDS)

    assert keys(response)[:3] == ["S1", "S10", "S11"]
    first = response.json()["results"][0]
    assert first["data"]["value"] == "1.50"
    assert first["data"]["quantity"] == 1
    assert (first["first_run"], first["last_run"], first["schema_version"]) == (loaded.pk, loaded.pk, 1)
    assert first["url"].endswith("/api/v1/datasets/sales/records/S1/")
    assert response.json()["next"] is None
    assert response.json()["previous"] is None


def test_a_page_costs_a_few_queries_and_never_a_count(as_viewer: APIClient, loaded: Run) -> None:
    with CaptureQueriesContext(connection) as queries:
        response = as_viewer.get(RECORDS, {"page_size": 1000, "quantity__gte": "0", "ordering": "-value"})

    assert response.status_code == 200
    statements = [q["sql"].upper() for q in queries.captured_queries]
    assert not any("COUNT(" in sql for sql in statements)
    assert len(statements) <= 4, statements


@pytest.mark.parametrize(
    "params",
    [{}, {"page_size": 2}, {"country": "FR"}, {"ordering": "-value", "page_size": 2}],
    ids=["first", "small", "filtered", "ordered"],
)
def test_a_records_page_is_three_statements(as_viewer: APIClient, loaded: Run, params: dict[str, Any]) -> None:
    """The user, the dataset with its grant check, the page: the same for a page reached by a cursor."""
    first = as_viewer.get(RECORDS, params)
    assert first.status_code == 200
    pages = [(RECORDS, params)]
    if first.json()["next"]:
        pages.append((first.json()["next"], {}))
    for url, query in pages:
        with CaptureQueriesContext(connection) as queries:
            response = as_viewer.get(url, query)

        assert response.status_code == 200
        assert len(queries.captured_queries) == 3, [q["sql"] for q in queries.captured_queries]


def test_pages_follow_next_and_previous_links_without_gaps(as_viewer: APIClient, loaded: Run) -> None:
    first = as_viewer.get(RECORDS, {"page_size": 5}).json()
    second = as_viewer.get(first["next"]).json()
    third = as_viewer.get(second["next"]).json()
    back = as_viewer.get(third["previous"]).json()

    assert [len(p["results"]) for p in (first, second, third)] == [5, 5, 2]
    assert third["next"] is None
    assert [r["key"] for r in back["results"]] == [r["key"] for r in second["results"]]
    assert sorted(walk(as_viewer, {"page_size": 5})) == sorted(f"S{n}" for n in range(1, 13))


def test_ordering_by_a_numeric_field_compares_numbers_not_text(as_viewer: APIClient, loaded: Run) -> None:
    ordered = walk(as_viewer, {"ordering": "-value", "page_size": 4})

    assert ordered == [f"S{n}" for n in range(12, 0, -1)]


@pytest.mark.parametrize("ordering", ["-key", "updated_at", "-updated_at", "is_active", "-timestamp", "email"])
def test_every_ordering_pages_through_every_record_once(as_viewer: APIClient, loaded: Run, ordering: str) -> None:
    seen = walk(as_viewer, {"ordering": ordering, "page_size": 5})

    assert sorted(seen) == sorted(f"S{n}" for n in range(1, 13))
    assert seen == keys(as_viewer.get(RECORDS, {"ordering": ordering}))


def test_walking_backwards_gives_the_same_pages(as_viewer: APIClient, loaded: Run) -> None:
    pages = []
    body = as_viewer.get(RECORDS, {"ordering": "quantity", "page_size": 5}).json()
    while True:
        pages.append([r["key"] for r in body["results"]])
        if not body["next"]:
            break
        body = as_viewer.get(body["next"]).json()
    backwards = [[r["key"] for r in body["results"]]]
    while body["previous"]:
        body = as_viewer.get(body["previous"]).json()
        backwards.insert(0, [r["key"] for r in body["results"]])

    assert backwards == pages
    assert [len(p) for p in pages] == [5, 5, 2]


def test_nulls_sort_last_in_both_directions(as_viewer: APIClient, sales: Dataset, ingest: Callable[..., Run]) -> None:
    ingest(
        sales,
        sales_csv(["A,2024-01-01,books,5,1,a@example.com,US,,yes", "B,2024-01-01,books,,1,b@example.com,US,,yes"]),
    )

    assert keys(as_viewer.get(RECORDS, {"ordering": "value"})) == ["A", "B"]
    assert keys(as_viewer.get(RECORDS, {"ordering": "-value"})) == ["A", "B"]
    assert walk(as_viewer, {"ordering": "-value", "page_size": 1}) == ["A", "B"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"quantity__gte": "3"}, ["S11", "S3", "S7"]),
        ({"quantity": "0"}, ["S12", "S4", "S8"]),
        ({"quantity__eq": "0"}, ["S12", "S4", "S8"]),
        ({"value__lte": "2.5"}, ["S1", "S2"]),
        ({"value__gte": "10"}, ["S10", "S11", "S12"]),
        ({"value": "3.5"}, ["S3"]),
        ({"value__in": "1.50,12.5"}, ["S1", "S12"]),
        ({"quantity__in": "1,2", "value__lte": "5.50"}, ["S1", "S2", "S5"]),
        ({"email__contains": "u1"}, ["S1", "S10", "S11", "S12"]),
        ({"email": "u7@example.com"}, ["S7"]),
        ({"id__gte": "S8"}, ["S8", "S9"]),
        ({"is_active": "yes"}, [f"S{n}" for n in sorted(range(1, 13), key=str)]),
        ({"is_active": "false"}, []),
        ({"timestamp": "2024-01-02T04:04:05+01:00"}, [f"S{n}" for n in sorted(range(1, 13), key=str)]),
        ({"timestamp__gte": "2024-01-02T03:04:06Z"}, []),
        ({"timestamp__lte": "2024-01-02 03:04:05.000001"}, [f"S{n}" for n in sorted(range(1, 13), key=str)]),
    ],
)
def test_filters_are_typed_by_the_schema(
    as_viewer: APIClient, loaded: Run, params: dict[str, str], expected: list[str]
) -> None:
    assert keys(as_viewer.get(RECORDS, params)) == expected


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"quantity": "abc"}, "quantity"),
        ({"quantity__gte": "99999999999999999999999999"}, "quantity__gte"),
        ({"quantity": ""}, "quantity"),
        ({"value": "1e5"}, "value"),
        ({"value__lte": "1" * 50}, "value__lte"),
        ({"timestamp__gte": "yesterday"}, "timestamp__gte"),
        ({"timestamp": "9999-12-31T23:59:59-23:00"}, "timestamp"),
        ({"is_active": "maybe"}, "is_active"),
        ({"quantity__contains": "1"}, "quantity__contains"),
        ({"is_active__gte": "true"}, "is_active__gte"),
        ({"colour": "red"}, "colour"),
        ({"quantity__like": "1"}, "quantity__like"),
        ({"quantity__in": ",".join(["1"] * 101)}, "quantity__in"),
        ({"ordering": "colour"}, "ordering"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1001"}, "page_size"),
        ({"page_size": "-5"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'{"o":"key","v":1,"k":2,"b":false}').decode()}, "cursor"),
        ({"run": "abc"}, "run"),
        ({"run": "9" * 30}, "run"),
        ({"quantity": "1\x00"}, "quantity"),
    ],
)
def test_bad_query_values_are_a_400_naming_the_parameter(
    as_viewer: APIClient, loaded: Run, params: dict[str, str], bad: str
) -> None:
    response = as_viewer.get(RECORDS, params)

    assert response.status_code == 400
    assert list(error_of(response)["details"]) == [bad]


def test_a_cursor_only_works_with_its_own_ordering(as_viewer: APIClient, loaded: Run) -> None:
    next_link = as_viewer.get(RECORDS, {"page_size": 2, "ordering": "quantity"}).json()["next"]
    cursor = next_link.split("cursor=")[1].split("&")[0]

    response = as_viewer.get(RECORDS, {"cursor": cursor, "ordering": "-quantity"})

    assert response.status_code == 400
    assert "ordering" in error_of(response)["details"]["cursor"][0]


def test_a_cursor_with_a_wrong_value_type_is_a_400(as_viewer: APIClient, loaded: Run) -> None:
    payload = {"o": "quantity", "v": "not a number", "k": "S1", "b": False}
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()

    assert as_viewer.get(RECORDS, {"cursor": cursor, "ordering": "quantity"}).status_code == 400


def test_run_filter_gives_the_records_a_run_last_wrote(
    as_viewer: APIClient, sales: Dataset, loaded: Run, ingest: Callable[..., Run]
) -> None:
    second = ingest(
        sales,
        sales_csv(
            [
                "S1,2024-01-02T03:04:05Z,toys,1.50,1,u1@example.com,US,,yes",
                "S99,2024-01-02,books,1,1,z@example.com,US,,no",
            ]
        ),
    )

    assert keys(as_viewer.get(RECORDS, {"run": second.pk})) == ["S1", "S99"]
    assert len(keys(as_viewer.get(RECORDS, {"run": loaded.pk}))) == 11


def test_a_run_of_another_dataset_is_a_404_in_the_filter(as_viewer: APIClient, loaded: Run, other_run: Run) -> None:
    response = as_viewer.get(RECORDS, {"run": other_run.pk})

    assert response.status_code == 404


def test_one_record_comes_with_its_lineage(as_viewer: APIClient, loaded: Run) -> None:
    response = as_viewer.get(f"{RECORDS}S5/")

    assert response.status_code == 200
    body = response.json()
    assert body["data"]["email"] == "u5@example.com"
    lineage = body["lineage"]
    assert lineage["first_run"]["id"] == loaded.pk
    assert lineage["last_run"]["file_sha256"] == loaded.raw_file.sha256
    assert lineage["last_run"]["file_name"] == loaded.raw_file.original_name
    assert (lineage["source_line"], lineage["schema_version"]) == (6, 1)


def test_keys_with_slashes_and_spaces_can_be_fetched(
    as_viewer: APIClient, sales: Dataset, ingest: Callable[..., Run]
) -> None:
    ingest(sales, sales_csv(['"a/b c?",2024-01-01,books,1,1,a@example.com,US,,yes']))

    url = as_viewer.get(RECORDS).json()["results"][0]["url"]

    assert as_viewer.get(url).json()["key"] == "a/b c?"


def test_an_unknown_key_is_a_404(as_viewer: APIClient, loaded: Run) -> None:
    assert as_viewer.get(f"{RECORDS}nope/").status_code == 404


@pytest.mark.parametrize("persona", ["stranger"], indirect=True)
def test_a_stranger_gets_404_for_records_and_filters(persona: APIClient, loaded: Run) -> None:
    for response in (
        persona.get(RECORDS),
        persona.get(RECORDS, {"quantity": "1"}),
        persona.get(RECORDS, {"run": loaded.pk}),
        persona.get(f"{RECORDS}S1/"),
    ):
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"


def test_a_grant_to_the_users_group_opens_the_records(sales: Dataset, loaded: Run) -> None:
    user = UserFactory(username="analyst")
    analysts = Group.objects.create(name="analysts")
    user.groups.add(analysts)
    DatasetGrant.objects.create(dataset=sales, group=analysts, role=DatasetRole.VIEWER)

    assert keys(bearer(user).get(RECORDS))[:2] == ["S1", "S10"]


def test_a_group_without_a_grant_on_the_dataset_gets_404(sales: Dataset, other: Dataset, loaded: Run) -> None:
    user = UserFactory(username="analyst")
    analysts = Group.objects.create(name="analysts")
    user.groups.add(analysts)
    DatasetGrant.objects.create(dataset=other, group=analysts, role=DatasetRole.MANAGER)

    response = bearer(user).get(RECORDS)

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_superuser_reads_records_without_a_grant(loaded: Run) -> None:
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)

    assert keys(bearer(admin).get(RECORDS))[:2] == ["S1", "S10"]


def test_a_deactivated_viewer_loses_the_records_at_once(viewer: Any, loaded: Run) -> None:
    client = bearer(viewer)
    assert client.get(RECORDS).status_code == 200
    viewer.is_active = False
    viewer.save()

    response = client.get(RECORDS)

    assert response.status_code == 401
    assert error_of(response)["code"] == "user_inactive"


def test_a_password_change_closes_the_records_to_earlier_tokens(viewer: Any, loaded: Run) -> None:
    client = bearer(viewer)
    assert client.get(RECORDS).status_code == 200
    viewer.set_password("a brand new passphrase")
    viewer.save()

    assert client.get(RECORDS).status_code == 401


def test_a_revoked_grant_closes_the_records_at_once(viewer: Any, sales: Dataset, loaded: Run) -> None:
    client = bearer(viewer)
    assert client.get(RECORDS).status_code == 200
    DatasetGrant.objects.filter(dataset=sales, user=viewer).delete()

    assert client.get(RECORDS).status_code == 404
