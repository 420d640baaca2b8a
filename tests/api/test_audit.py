"""The audit trail: who created or changed datasets and grants, uploaded, retried, cancelled, fixed, logged in."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from ingestion.models import AuditEvent, Dataset, DatasetGrant
from processing.models import RejectedRow, Run, RunStatus
from processing.services.rejects import rejected_rows_reload
from processing.services.runs import run_cancel, run_retry
from tests.factories import UserFactory

from .conftest import API, sales_csv

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def actions(**filters: Any) -> list[tuple[str, str]]:
    return list(AuditEvent.objects.filter(**filters).order_by("id").values_list("actor_name", "action"))


def test_api_logins_and_failed_logins_are_audited(manager: Any) -> None:
    client = APIClient()
    assert (
        client.post(f"{API}/auth/token/", {"username": "manager", "password": PASSWORD}, format="json").status_code
        == 200
    )
    assert (
        client.post(f"{API}/auth/token/", {"username": "manager", "password": "wrong"}, format="json").status_code
        == 401
    )

    assert actions(action__startswith="login") == [("manager", "login"), ("manager", "login_failed")]
    failed = AuditEvent.objects.get(action="login_failed")
    assert failed.ip == "127.0.0.1"
    assert PASSWORD not in str(failed.details) and "wrong" not in str(failed.details)


def test_admin_logins_are_audited(db: None) -> None:
    UserFactory(username="ops", is_staff=True)
    client = Client()
    client.post("/admin/login/", {"username": "ops", "password": "nope", "next": "/admin/"})
    client.post("/admin/login/", {"username": "ops", "password": PASSWORD, "next": "/admin/"})

    assert actions() == [("ops", "login_failed"), ("ops", "login")]


def test_dataset_grant_upload_retry_cancel_and_fix_are_audited(
    as_manager: APIClient, manager: Any, sales: Dataset, ingest: Any
) -> None:
    AuditEvent.objects.all().delete()
    viewer = UserFactory(username="vera")
    assert (
        as_manager.post(f"{API}/datasets/sales/grants/", {"user": "vera", "role": "viewer"}, format="json").status_code
        == 201
    )
    run = ingest(sales, sales_csv(["S1,bad,books,1,1,a@example.com,US,,yes"]), user=manager)
    row = RejectedRow.objects.get(run=run)
    row.raw = {**row.raw, "timestamp": "2024-01-02"}
    row.save()
    rejected_rows_reload(run=run, row_ids=[row.pk], user=manager)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    retry = run_retry(run=Run.objects.get(pk=run.pk), user=manager)
    run_cancel(run=retry, user=manager)

    assert actions(dataset=sales) == [
        ("manager", "grant_changed"),
        ("manager", "file_uploaded"),
        ("manager", "rejected_rows_fixed"),
        ("manager", "run_retried"),
        ("manager", "run_cancelled"),
    ]
    grant_event = AuditEvent.objects.get(action="grant_changed")
    assert grant_event.details == {"grantee": "user:vera", "role": "viewer", "created": True}
    assert DatasetGrant.objects.filter(user=viewer).exists()


def test_managers_list_their_datasets_events_and_strangers_get_404(
    as_manager: APIClient, as_viewer: APIClient, as_stranger: APIClient, sales: Dataset, other: Dataset
) -> None:
    response = as_manager.get(f"{API}/audit/", {"dataset": "sales"})
    assert response.status_code == 200
    events = response.json()["results"]
    assert {e["dataset"] for e in events} == {"sales"}
    assert events[0].keys() == {"id", "at", "actor", "action", "dataset", "object_type", "object_id", "details", "ip"}

    assert as_viewer.get(f"{API}/audit/").json()["results"] == []
    assert as_stranger.get(f"{API}/audit/", {"dataset": "sales"}).status_code == 404
    assert {e["dataset"] for e in as_stranger.get(f"{API}/audit/").json()["results"]} <= {"other"}
    assert as_manager.get(f"{API}/audit/", {"action": "nonsense"}).status_code == 400
