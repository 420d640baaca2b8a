"""A run's profile and checks through the API (same permissions as the run), run_status and the run page."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ingestion.models import Dataset, DatasetGrant, DatasetRole
from processing.models import Run, RunStatus

from .conftest import ORDERS_SCHEMA, apply_orders, orders_rows, orders_text

pytestmark = pytest.mark.django_db
API = "/api/v1"


def bearer(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def checked_run(ingest: Callable[..., Run]) -> Run:
    dataset = apply_orders(
        [{"kind": "row_count", "at_least": 1}, {"kind": "null_share", "field": "price", "at_most": 0.01}]
    )
    run = ingest(dataset, orders_text(orders_rows(40, seed=2)))
    assert run.status == RunStatus.SUCCEEDED
    return run


def user_with(role: str | None, dataset: Dataset, name: str) -> Any:
    user = get_user_model().objects.create_user(name, password="pw-long-enough-123")
    if role is not None:
        DatasetGrant.objects.create(dataset=dataset, user=user, role=role)
    return user


@pytest.mark.parametrize("role", [DatasetRole.VIEWER, DatasetRole.INGESTER, DatasetRole.MANAGER])
def test_users_who_see_the_run_get_its_profile_and_checks(checked_run: Run, role: str) -> None:
    client = bearer(user_with(role, checked_run.dataset, f"u-{role}"))
    profile = client.get(f"{API}/runs/{checked_run.pk}/profile/")
    assert profile.status_code == 200
    body = profile.json()
    assert body["run"] == checked_run.pk and body["profile"]["rows"] == 40
    assert set(body["profile"]["fields"]) == {f["name"] for f in ORDERS_SCHEMA["fields"]}
    checks = client.get(f"{API}/runs/{checked_run.pk}/checks/").json()
    assert [(c["kind"], c["status"]) for c in checks["checks"]] == [("row_count", "passed"), ("null_share", "failed")]


def test_a_stranger_and_an_anonymous_client_get_nothing(checked_run: Run) -> None:
    other = Dataset.objects.create(slug="other", name="Other")
    stranger = bearer(user_with(DatasetRole.MANAGER, other, "stranger"))
    for suffix in ("profile", "checks"):
        assert stranger.get(f"{API}/runs/{checked_run.pk}/{suffix}/").status_code == 404
        assert APIClient().get(f"{API}/runs/{checked_run.pk}/{suffix}/").status_code == 401
    assert stranger.get(f"{API}/runs/99999999/profile/").status_code == 404


def test_unknown_query_parameters_are_refused(checked_run: Run) -> None:
    client = bearer(user_with(DatasetRole.VIEWER, checked_run.dataset, "v"))
    assert client.get(f"{API}/runs/{checked_run.pk}/profile/?fields=x").status_code == 400


def test_run_status_json_lists_checks_and_the_profile_on_request(checked_run: Run) -> None:
    out = io.StringIO()
    call_command("run_status", checked_run.pk, json=True, stdout=out)
    plain = json.loads(out.getvalue())
    assert [c["status"] for c in plain["checks"]] == ["passed", "failed"]
    assert "profile" not in plain
    out = io.StringIO()
    call_command("run_status", checked_run.pk, json=True, profile=True, stdout=out)
    full = json.loads(out.getvalue())
    assert full["profile"]["rows"] == 40
    assert full["profile"]["fields"]["price"]["nulls"] == full["profile"]["fields"]["price"]["count"] - sum(
        1 for r in orders_rows(40, seed=2) if r.split(",")[3]
    )


def test_the_run_page_shows_checks_and_profile(checked_run: Run) -> None:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-123")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/processing/run/{checked_run.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="run-checks"' in html and 'data-status="failed"' in html
    assert 'id="run-profile"' in html and 'data-field="price"' in html
