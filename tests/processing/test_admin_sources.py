"""Sources in the console: the secret is masked, Pull now queues a run, Preview keeps nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from pytest_httpserver import HTTPServer

from ingestion.crypto import secret_decrypt
from ingestion.models import Dataset, DatasetRole, Source
from processing.models import Run
from tests.processing.test_admin import client_for
from tests.records import records_total

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
    assert "points at 169.254.169.254, a link-local address; sources may only reach" in str(errors["url"])
    assert "cron" in errors and "secret" in errors
    assert not Source.objects.exists()


def test_an_operator_pulls_now_and_previews(sales: Dataset, api: str, django_capture_on_commit_callbacks: Any) -> None:
    admin = client_for(superuser=True)
    admin.post(reverse("admin:ingestion_source_add"), form_data(sales, api))
    source = Source.objects.get()
    operator = client_for("Operators", grants={sales: DatasetRole.INGESTER})

    preview = operator.post(reverse("admin:ingestion_source_preview", args=[source.pk]))
    assert preview.status_code == 200
    assert 'id="pull-records">3<' in preview.content.decode()
    assert Run.objects.count() == 0 and records_total() == 0

    with django_capture_on_commit_callbacks(execute=True):
        pulled = operator.post(reverse("admin:ingestion_source_pull", args=[source.pk]))
    run = Run.objects.get()
    assert pulled.status_code == 302 and pulled["Location"] == reverse("admin:processing_run_change", args=[run.pk])
    assert run.source_id == source.pk and run.trigger == "admin"


def test_a_viewer_sees_sources_but_cannot_pull(sales: Dataset, api: str) -> None:
    admin = client_for(superuser=True)
    admin.post(reverse("admin:ingestion_source_add"), form_data(sales, api))
    source = Source.objects.get()
    viewer = client_for("Viewers", grants={sales: DatasetRole.VIEWER})

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
    assert (
        "points at 10.0.0.5, a private address; webhooks may only reach" in str(errors["notify_webhooks"])
        and "notify_emails" in errors
    )

    good = admin.post(
        url,
        {**base, "notify_webhooks": '["https://hooks.example.com/x"]', "notify_emails": '["ops@example.com"]'},
    )
    assert good.status_code == 302
    sales.refresh_from_db()
    assert sales.notify_emails == ["ops@example.com"]


@pytest.mark.parametrize(
    ("url", "points_at"),
    [
        ("http://2130706433/", "points at 127.0.0.1, a loopback address"),
        ("http://0x7f.1/", "points at 127.0.0.1, a loopback address"),
        ("http://127.1/", "points at 127.0.0.1, a loopback address"),
        ("http://0177.0.0.1/", "points at 127.0.0.1, a loopback address"),
        ("http://localhost./", "resolves to 127.0.0.1, a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "points at 127.0.0.1, a loopback address"),
        ("http://169.254.169.254/", "points at 169.254.169.254, a link-local address"),
    ],
)
def test_the_form_refuses_every_spelling_of_an_internal_address(
    sales: Dataset, settings: Any, url: str, points_at: str
) -> None:
    admin = client_for(superuser=True)
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}

    response = admin.post(reverse("admin:ingestion_source_add"), form_data(sales, url))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"] == [
        f"{url} {points_at}; sources may only reach public addresses unless SOURCE_ALLOWED_NETWORKS allows it"
    ]
    assert not Source.objects.exists()


def test_the_form_accepts_an_internal_spelling_that_allowed_networks_cover(sales: Dataset, settings: Any) -> None:
    admin = client_for(superuser=True)
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}

    response = admin.post(reverse("admin:ingestion_source_add"), form_data(sales, "http://0x7f.1/w"))

    assert response.status_code == 302
    assert Source.objects.get().url == "http://0x7f.1/w"


@pytest.mark.parametrize(
    ("hook", "points_at"),
    [
        ("http://2130706433/hook", "points at 127.0.0.1, a loopback address"),
        ("http://0x7f.1/hook", "points at 127.0.0.1, a loopback address"),
        ("http://LOCALHOST/hook", "resolves to 127.0.0.1, a loopback address"),
        ("http://[::ffff:169.254.169.254]/hook", "points at 169.254.169.254, a link-local address"),
    ],
)
def test_dataset_webhooks_refuse_every_spelling_of_an_internal_address(
    sales: Dataset, settings: Any, hook: str, points_at: str
) -> None:
    admin = client_for(superuser=True)
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
    base = {"name": sales.name, "description": "", "delimiter": ",", "reject_threshold": "", "notify_emails": "[]"}
    base.update({"grants-TOTAL_FORMS": "0", "grants-INITIAL_FORMS": "0", "schema_versions-TOTAL_FORMS": "0"})
    base.update({"schema_versions-INITIAL_FORMS": "0", "notify_webhooks": json.dumps([hook])})

    response = admin.post(reverse("admin:ingestion_dataset_change", args=[sales.pk]), base)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["notify_webhooks"] == [
        f"{hook.lower()} {points_at}; webhooks may only reach public addresses unless SOURCE_ALLOWED_NETWORKS allows it"
    ]
    sales.refresh_from_db()
    assert sales.notify_webhooks == []


def test_the_dataset_form_refuses_more_webhooks_than_the_limit(sales: Dataset, dns_lookups: list[str]) -> None:
    from ingestion.services.datasets import MAX_DATASET_WEBHOOKS

    admin = client_for(superuser=True)
    hooks = [f"https://8.8.4.{n}/run" for n in range(1, MAX_DATASET_WEBHOOKS + 2)]
    base = {"name": sales.name, "description": "", "delimiter": ",", "reject_threshold": "", "notify_emails": "[]"}
    base.update({"grants-TOTAL_FORMS": "0", "grants-INITIAL_FORMS": "0", "schema_versions-TOTAL_FORMS": "0"})
    base.update({"schema_versions-INITIAL_FORMS": "0", "notify_webhooks": json.dumps(hooks)})

    response = admin.post(reverse("admin:ingestion_dataset_change", args=[sales.pk]), base)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["notify_webhooks"] == [
        f"A dataset may have at most {MAX_DATASET_WEBHOOKS} webhooks; {MAX_DATASET_WEBHOOKS + 1} were given."
    ]
    sales.refresh_from_db()
    assert sales.notify_webhooks == []
    assert dns_lookups == []
