"""``/api/v1/sources/``: configure sources (secret write-only), pull them, preview a pull."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient

from ingestion.models import Dataset, Source
from processing.models import Run
from tests.api.conftest import API, error_of
from tests.conftest import run_queued_tasks
from tests.records import records_total

TOKEN = "tok-Zx81-never-shown"


def sales_records(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"A{n}",
            "timestamp": "2024-01-01T00:00:00Z",
            "category": "toys",
            "value": "3.50",
            "quantity": 2,
            "customer_email": f"a{n}@example.com",
            "country": "fr",
            "is_active": "yes",
        }
        for n in range(1, count + 1)
    ]


@pytest.fixture
def api(httpserver: HTTPServer) -> str:
    """A cursor-paginated API that wants a bearer token."""
    records = sales_records(7)

    def handle(request: Any) -> Any:
        from werkzeug import Response

        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response("{}", status=401, content_type="application/json")
        start = int(request.args.get("cursor", "0"))
        page = records[start : start + 3]
        nxt = str(start + 3) if start + 3 < len(records) else None
        return Response(json.dumps({"results": page, "next": nxt}), content_type="application/json")

    httpserver.expect_request("/records").respond_with_handler(handle)
    return httpserver.url_for("/records")


def source_body(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "crm",
        "dataset": "sales",
        "endpoint": url,
        "auth": "bearer",
        "secret": TOKEN,
        "records_path": "results",
        "pagination": "cursor",
        "page_param": "cursor",
        "next_path": "next",
        **extra,
    }


@pytest.mark.django_db
def test_a_manager_creates_a_source_and_its_secret_is_never_returned(
    as_manager: APIClient, api: str, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    created = as_manager.post(f"{API}/sources/", source_body(api), format="json")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["has_secret"] is True and "secret" not in body
    assert TOKEN not in created.content.decode()
    listed = as_manager.get(f"{API}/sources/")
    detail = as_manager.get(body["url"])
    assert TOKEN not in listed.content.decode() + detail.content.decode()
    assert TOKEN not in Source.objects.get().secret_encrypted
    assert TOKEN not in caplog.text


@pytest.mark.django_db
def test_pull_answers_202_and_the_worker_loads_every_page(
    as_manager: APIClient, as_ingester: APIClient, api: str, caplog: Any, django_capture_on_commit_callbacks: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    source = as_manager.post(f"{API}/sources/", source_body(api), format="json").json()

    with django_capture_on_commit_callbacks(execute=True):
        response = as_ingester.post(source["pull_url"])
    assert response.status_code == 202
    assert response.json()["status"] == "queued" and response.json()["source"] == "crm"
    run_queued_tasks()

    run = Run.objects.get(pk=response.json()["id"])
    assert run.status == "succeeded" and run.rows_inserted == 7
    assert records_total() == 7
    assert TOKEN not in caplog.text  # the token went to the API in a header, never into a log line


@pytest.mark.django_db
def test_a_dry_run_pull_previews_and_keeps_nothing(as_manager: APIClient, api: str) -> None:
    source = as_manager.post(f"{API}/sources/", source_body(api), format="json").json()

    response = as_manager.post(f"{source['pull_url']}?dry_run=true")

    assert response.status_code == 200, response.json()
    assert response.json()["pull"]["records"] == 7 and response.json()["preview"]["inserted"] == 7
    assert Run.objects.count() == 0 and records_total() == 0


@pytest.mark.django_db
def test_roles_viewer_reads_ingester_pulls_manager_configures(
    as_manager: APIClient, as_ingester: APIClient, as_viewer: APIClient, as_stranger: APIClient, api: str
) -> None:
    source = as_manager.post(f"{API}/sources/", source_body(api), format="json").json()

    assert as_viewer.get(source["url"]).status_code == 200
    assert as_viewer.post(source["pull_url"]).status_code == 403
    assert as_ingester.patch(source["url"], {"page_size": 5}, format="json").status_code == 403
    assert as_ingester.post(f"{API}/sources/", source_body(api, name="mine"), format="json").status_code == 403
    assert as_stranger.get(source["url"]).status_code == 404
    assert as_stranger.post(source["pull_url"]).status_code == 404
    assert as_stranger.get(f"{API}/sources/").json()["results"] == []


@pytest.mark.django_db
def test_patch_keeps_the_secret_unless_it_is_sent(as_manager: APIClient, api: str) -> None:
    source = as_manager.post(f"{API}/sources/", source_body(api), format="json").json()

    changed = as_manager.patch(
        source["url"], {"page_size": 3, "schedule": "interval", "interval_minutes": 10}, format="json"
    )

    assert changed.status_code == 200, changed.json()
    assert changed.json()["has_secret"] is True and changed.json()["schedule"] == "interval"
    refused = as_manager.patch(source["url"], {"secret": ""}, format="json")
    assert refused.status_code == 400
    assert "secret" in error_of(refused)["details"]


@pytest.mark.django_db
def test_bad_configurations_get_clear_errors(as_manager: APIClient, api: str, settings: Any) -> None:
    response = as_manager.post(
        f"{API}/sources/",
        source_body("ftp://example.com/data", pagination="offset", size_param="", cron="x", schedule="cron"),
        format="json",
    )
    assert response.status_code == 400
    # Errors are reported under the names the client sent: "url" is the source's own link.
    assert set(error_of(response)["details"]) >= {"endpoint", "size_param", "cron"}
    assert "url" not in error_of(response)["details"]

    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    metadata = as_manager.post(f"{API}/sources/", source_body("http://169.254.169.254/"), format="json")
    assert metadata.status_code == 400
    assert (
        "http://169.254.169.254/ points at 169.254.169.254, a link-local address; sources may only reach"
        in json.dumps(error_of(metadata)["details"])
    )


@pytest.mark.django_db
def test_a_source_cannot_go_to_a_dataset_the_manager_does_not_manage(
    as_manager: APIClient, api: str, other: Dataset
) -> None:
    response = as_manager.post(f"{API}/sources/", source_body(api, dataset="other"), format="json")

    assert response.status_code == 404
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_deleting_a_source_keeps_its_runs(as_manager: APIClient, as_ingester: APIClient, api: str) -> None:
    source = as_manager.post(f"{API}/sources/", source_body(api), format="json").json()
    as_ingester.post(source["pull_url"])

    assert as_manager.delete(source["url"]).status_code == 204
    assert Run.objects.get().source_id is None


INTERNAL_SPELLINGS = [
    ("http://2130706433/", "points at 127.0.0.1, a loopback address"),
    ("http://0x7f.1/", "points at 127.0.0.1, a loopback address"),
    ("http://127.1/", "points at 127.0.0.1, a loopback address"),
    ("http://0177.0.0.1/", "points at 127.0.0.1, a loopback address"),
    ("http://localhost/", "resolves to 127.0.0.1, a loopback address"),
    ("http://localhost./", "resolves to 127.0.0.1, a loopback address"),
    ("http://LOCALHOST/", "resolves to 127.0.0.1, a loopback address"),
    ("http://[::1]/", "points at ::1, a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "points at 127.0.0.1, a loopback address"),
    ("http://0.0.0.0/", "points at 0.0.0.0, an unspecified address (the local host)"),
    ("http://169.254.169.254/", "points at 169.254.169.254, a link-local address"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "points_at"), INTERNAL_SPELLINGS)
def test_every_spelling_of_an_internal_address_is_refused_when_a_source_is_created(
    as_manager: APIClient, settings: Any, url: str, points_at: str
) -> None:
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}

    response = as_manager.post(f"{API}/sources/", source_body(url), format="json")

    assert response.status_code == 400
    shown = url.lower()
    assert error_of(response)["details"]["endpoint"] == [
        f"{shown} {points_at}; sources may only reach public addresses unless SOURCE_ALLOWED_NETWORKS allows it"
    ]
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_a_source_cannot_be_changed_to_point_inside_the_network(as_manager: APIClient, api: str, settings: Any) -> None:
    source = as_manager.post(f"{API}/sources/", source_body(api), format="json").json()
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}

    response = as_manager.patch(source["url"], {"endpoint": "http://0x7f.1/records", "secret": TOKEN}, format="json")

    assert response.status_code == 400
    assert (
        "http://0x7f.1/records points at 127.0.0.1, a loopback address" in error_of(response)["details"]["endpoint"][0]
    )
    assert Source.objects.get().url == api


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://2130706433/records", "http://127.1/records", "http://localhost./records"])
def test_internal_spellings_are_accepted_when_allowed_networks_cover_them(
    as_manager: APIClient, settings: Any, url: str
) -> None:
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}

    response = as_manager.post(f"{API}/sources/", source_body(url), format="json")

    assert response.status_code == 201, response.json()
    assert Source.objects.get().url == url


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["https://8.8.8.8/v1/records", "https://[2606:4700:4700::1111]/records"])
def test_public_addresses_are_accepted(as_manager: APIClient, settings: Any, url: str) -> None:
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}

    assert as_manager.post(f"{API}/sources/", source_body(url), format="json").status_code == 201


@pytest.fixture
def two_sources(as_manager: APIClient, as_stranger: APIClient, api: str) -> dict[str, int]:
    """One source on ``sales`` (made by its manager), one on ``other`` (made by the stranger, its manager)."""
    mine = as_manager.post(f"{API}/sources/", source_body(api), format="json")
    theirs = as_stranger.post(f"{API}/sources/", source_body(api, dataset="other", name="their-crm"), format="json")
    assert mine.status_code == theirs.status_code == 201, (mine.content, theirs.content)
    return {"sales": mine.json()["id"], "other": theirs.json()["id"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "dataset", "sees"),
    [
        ("manager", "sales", "sales"),
        ("viewer", "sales", "sales"),
        ("stranger", "other", "other"),
    ],
    indirect=["persona"],
)
def test_filtering_sources_by_a_visible_dataset_lists_its_sources(
    persona: APIClient, two_sources: dict[str, int], dataset: str, sees: str
) -> None:
    response = persona.get(f"{API}/sources/", {"dataset": dataset})

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["results"]] == [two_sources[sees]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "dataset"),
    [
        ("manager", "other"),  # exists, but the manager of sales has no grant on it
        ("viewer", "other"),
        ("stranger", "sales"),
        ("manager", "no-such-dataset"),
        ("stranger", "no-such-dataset"),
        ("viewer", "x" * 300),
    ],
    indirect=["persona"],
)
def test_filtering_sources_by_a_dataset_you_cannot_see_is_a_404(
    persona: APIClient, two_sources: dict[str, int], dataset: str
) -> None:
    response = persona.get(f"{API}/sources/", {"dataset": dataset})

    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert error["message"] == f"No dataset {dataset!r}."
