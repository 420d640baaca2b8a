"""Sources in the console: the secret is masked, Pull now queues a run, Preview keeps nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from pytest_httpserver import HTTPServer

from ingestion.crypto import secret_decrypt
from ingestion.models import Dataset, Source
from processing.models import Record, Run
from tests.processing.test_admin import client_for

pytestmark = pytest.mark.django_db

SECRET = "admin-typed-s3cret"
RECORDS = [
    {
        "id": f"W{n}",
        "timestamp": "2024-02-02T02:02:02Z",
        "category": "books",
        "value": 1,
        "quantity": n,
        "customer_email": f"w{n}@example.com",
        "country": "se",
        "is_active": "no",
    }
    for n in range(1, 4)
]


@pytest.fixture
def api(httpserver: HTTPServer) -> str:
    httpserver.expect_request("/w", headers={"X-API-Key": SECRET}).respond_with_json(RECORDS)
    return httpserver.url_for("/w")


def form_data(dataset: Dataset, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": dataset.pk,
        "name": "warehouse",
        "enabled": "on",
        "url": url,
        "method": "GET",
        "params": "{}",
        "headers": "{}",
        "body": "null",
        "auth": "api_key_header",
        "auth_name": "",
        "secret": SECRET,
        "records_path": "",
        "pagination": "none",
        "page_param": "page",
        "size_param": "",
        "page_size": "100",
        "first_page": "1",
        "next_path": "",
        "max_pages": "10",
        "max_records": "1000",
        "cursor_field": "",
        "watermark_param": "",
        "watermark": "",
        "schedule": "none",
        "interval_minutes": "",
        "cron": "",
        **extra,
    }


def test_a_superuser_adds_a_source_and_the_secret_is_never_shown_again(sales: Dataset, api: str) -> None:
    admin = client_for(superuser=True)

    response = admin.post(reverse("admin:ingestion_source_add"), form_data(sales, api), follow=True)

    assert response.status_code == 200
    source = Source.objects.get()
    assert secret_decrypt(source.secret_encrypted) == SECRET and source.auth_name == "X-API-Key"
    page = admin.get(reverse("admin:ingestion_source_change", args=[source.pk])).content.decode()
    assert SECRET not in page and "stored (encrypted)" in page
    # Saving the form again with the secret field left empty keeps the secret.
    admin.post(reverse("admin:ingestion_source_change", args=[source.pk]), form_data(sales, api, secret=""))
    source.refresh_from_db()
    assert secret_decrypt(source.secret_encrypted) == SECRET


def test_the_form_shows_configuration_errors_by_field(sales: Dataset, settings: Any) -> None:
    admin = client_for(superuser=True)
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}

    response = admin.post(
        reverse("admin:ingestion_source_add"),
        form_data(sales, "http://169.254.169.254/", schedule="cron", cron="nope", secret=""),
    )

    errors = response.context["adminform"].form.errors
    assert "not an allowed destination" in str(errors["url"])
    assert "cron" in errors and "secret" in errors
    assert not Source.objects.exists()


def test_an_operator_pulls_now_and_previews(sales: Dataset, api: str, django_capture_on_commit_callbacks: Any) -> None:
    admin = client_for(superuser=True)
    admin.post(reverse("admin:ingestion_source_add"), form_data(sales, api))
    source = Source.objects.get()
    operator = client_for("Operators")

    preview = operator.post(reverse("admin:ingestion_source_preview", args=[source.pk]))
    assert preview.status_code == 200
    assert 'id="pull-records">3<' in preview.content.decode()
    assert Run.objects.count() == 0 and Record.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        pulled = operator.post(reverse("admin:ingestion_source_pull", args=[source.pk]))
    run = Run.objects.get()
    assert pulled.status_code == 302 and pulled["Location"] == reverse("admin:processing_run_change", args=[run.pk])
    assert run.source_id == source.pk and run.trigger == "admin"


def test_a_viewer_sees_sources_but_cannot_pull(sales: Dataset, api: str) -> None:
    admin = client_for(superuser=True)
    admin.post(reverse("admin:ingestion_source_add"), form_data(sales, api))
    source = Source.objects.get()
    viewer = client_for("Viewers")

    assert viewer.get(reverse("admin:ingestion_source_changelist")).status_code == 200
    assert viewer.post(reverse("admin:ingestion_source_pull", args=[source.pk])).status_code == 403
    assert viewer.post(reverse("admin:ingestion_source_preview", args=[source.pk])).status_code == 403
    assert not Run.objects.exists()


def test_dataset_notification_targets_are_checked(sales: Dataset, settings: Any) -> None:
    admin = client_for(superuser=True)
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    url = reverse("admin:ingestion_dataset_change", args=[sales.pk])
    base = {"name": sales.name, "description": "", "delimiter": ",", "reject_threshold": ""}
    base.update({"grants-TOTAL_FORMS": "0", "grants-INITIAL_FORMS": "0", "schema_versions-TOTAL_FORMS": "0"})
    base.update({"schema_versions-INITIAL_FORMS": "0"})

    bad = admin.post(
        url, {**base, "notify_webhooks": json.dumps(["http://10.0.0.5/hook"]), "notify_emails": '["not-mail"]'}
    )
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors
    assert "not an allowed destination" in str(errors["notify_webhooks"]) and "notify_emails" in errors

    good = admin.post(
        url,
        {**base, "notify_webhooks": '["https://hooks.example.com/x"]', "notify_emails": '["ops@example.com"]'},
    )
    assert good.status_code == 302
    sales.refresh_from_db()
    assert sales.notify_emails == ["ops@example.com"]
