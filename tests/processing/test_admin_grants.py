"""The console honours per-dataset grants as the API does: one question, asked of ``dataset_may``.

Personas: an operator (the Operators group) holding a grant on dataset A
(``sales``) and none on dataset B (``hidden``), and a superuser, who sees
and may do everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ingestion.models import Dataset, DatasetRole, RawFile, Source
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from ingestion.services.raw_files import raw_file_receive
from ingestion.services.sources import source_create
from processing.models import RejectedRow, Run, RunStatus
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, SALES_SCHEMA, sales_row

from .test_admin import client_for

pytestmark = pytest.mark.django_db
BAD_ROW = "S9,2024-01-02,games,1,1,a@example.com,US,,yes"


@pytest.fixture
def hidden(db: None) -> Dataset:
    schema = {**json.loads(json.dumps(SALES_SCHEMA)), "slug": "hidden-sales", "name": "Hidden sales"}
    return dataset_apply(spec=schema_parse(schema)).dataset


def ingest(dataset: Dataset, csv_file: Callable[..., Path], *rows: str, header: str = SALES_HEADER) -> Run:
    path = csv_file("\n".join([header, *rows]) + "\n")
    with path.open("rb") as fh:
        return file_ingest(dataset=dataset, source=fh, original_name=f"{dataset.slug}.csv")


def failed_run(dataset: Dataset, csv_file: Callable[..., Path]) -> Run:
    run = ingest(dataset, csv_file, "1,2", header="nope,header")
    assert run.status == RunStatus.FAILED
    return run


def operator_with(grants: dict[Dataset, str]) -> Client:
    return client_for("Operators", grants=grants)


def retry(client: Client, run: Run) -> Any:
    return client.post(reverse("admin:processing_run_retry", args=[run.pk]))


def test_an_operator_sees_the_runs_of_their_datasets_only(
    sales: Dataset, hidden: Dataset, csv_file: Callable[..., Path]
) -> None:
    mine, theirs = failed_run(sales, csv_file), failed_run(hidden, csv_file)
    operator = operator_with({sales: DatasetRole.VIEWER})

    listing = operator.get(reverse("admin:processing_run_changelist"))
    page = listing.content.decode()
    assert listing.status_code == 200
    assert reverse("admin:processing_run_change", args=[mine.pk]) in page
    assert reverse("admin:processing_run_change", args=[theirs.pk]) not in page
    assert "hidden-sales" not in page  # not even in the filters
    # Another dataset's run is not there: Django's "does not exist" redirect, and 404s.
    opened = operator.get(reverse("admin:processing_run_change", args=[theirs.pk]))
    assert opened.status_code == 302 and opened["Location"] == reverse("admin:index")
    assert operator.get(reverse("admin:processing_run_progress", args=[theirs.pk])).status_code == 404
    assert operator.get(reverse("admin:processing_run_progress", args=[mine.pk])).status_code == 200


def test_an_operator_cannot_retry_or_cancel_a_run_of_a_dataset_they_have_no_grant_on(
    sales: Dataset, hidden: Dataset, csv_file: Callable[..., Path]
) -> None:
    theirs = failed_run(hidden, csv_file)
    queued = Run.objects.create(dataset=hidden, raw_file=theirs.raw_file, schema=theirs.schema)
    operator = operator_with({sales: DatasetRole.INGESTER})

    assert retry(operator, theirs).status_code == 404
    assert operator.post(reverse("admin:processing_run_cancel", args=[queued.pk])).status_code == 404
    assert operator.post(reverse("admin:processing_run_replay", args=[theirs.pk])).status_code == 404

    assert Run.objects.filter(dataset=hidden).count() == 2  # no new run
    theirs.refresh_from_db()
    queued.refresh_from_db()
    assert (theirs.status, queued.status, queued.cancel_requested) == (RunStatus.FAILED, RunStatus.QUEUED, False)


def test_a_viewer_grant_lets_an_operator_see_a_run_but_not_retry_it(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    run = failed_run(sales, csv_file)
    operator = operator_with({sales: DatasetRole.VIEWER})

    page = operator.get(reverse("admin:processing_run_change", args=[run.pk])).content.decode()
    assert 'id="action-retry"' not in page and 'id="action-replay"' not in page
    assert retry(operator, run).status_code == 403
    assert operator.post(reverse("admin:processing_run_replay", args=[run.pk])).status_code == 403
    assert Run.objects.count() == 1


def test_an_ingester_grant_lets_an_operator_retry(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = failed_run(sales, csv_file)
    operator = operator_with({sales: DatasetRole.INGESTER})

    assert 'id="action-retry"' in operator.get(reverse("admin:processing_run_change", args=[run.pk])).content.decode()
    response = retry(operator, run)

    new = Run.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302 and new.parent_id == run.pk


def test_a_superuser_still_operates_every_dataset(hidden: Dataset, csv_file: Callable[..., Path]) -> None:
    run = failed_run(hidden, csv_file)
    admin = client_for(superuser=True)

    assert admin.get(reverse("admin:processing_run_change", args=[run.pk])).status_code == 200
    assert retry(admin, run).status_code == 302
    assert Run.objects.filter(parent=run).exists()


@pytest.mark.parametrize("role", [None, DatasetRole.VIEWER, DatasetRole.INGESTER, DatasetRole.MANAGER])
def test_the_console_retries_exactly_when_the_api_would(
    role: str | None, sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    for_api, for_console = failed_run(sales, csv_file), failed_run(sales, csv_file)
    console = operator_with({sales: role} if role else {})
    user = get_user_model().objects.get(pk=console.session["_auth_user_id"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")

    by_api = api.post(f"/api/v1/runs/{for_api.pk}/retry/").status_code
    by_console = retry(console, for_console).status_code

    expected = {None: (404, 404), DatasetRole.VIEWER: (403, 403)}.get(role, (202, 302))
    assert (by_api, by_console) == expected
    assert Run.objects.filter(parent=for_console).exists() is (by_console == 302)


def test_rejected_rows_of_other_datasets_are_neither_listed_nor_loaded(
    sales: Dataset, hidden: Dataset, csv_file: Callable[..., Path]
) -> None:
    ingest(sales, csv_file, sales_row(1), BAD_ROW)
    theirs = ingest(hidden, csv_file, sales_row(1), BAD_ROW)
    their_row = RejectedRow.objects.get(run=theirs)
    operator = operator_with({sales: DatasetRole.INGESTER})

    listing = operator.get(reverse("admin:processing_rejectedrow_changelist")).content.decode()
    assert f"#{theirs.pk} (hidden-sales)" not in listing and "(sales)" in listing
    assert operator.get(reverse("admin:processing_rejectedrow_change", args=[their_row.pk])).status_code == 302
    operator.post(
        reverse("admin:processing_rejectedrow_changelist"),
        {"action": "revalidate_and_load", "_selected_action": [their_row.pk]},
    )
    assert not Run.objects.filter(parent=theirs).exists()
    assert RejectedRow.objects.filter(pk=their_row.pk, run=theirs).exists()


def test_a_viewer_grant_does_not_let_an_operator_fix_rejected_rows(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    run = ingest(sales, csv_file, sales_row(1), BAD_ROW)
    row = RejectedRow.objects.get(run=run)
    operator = operator_with({sales: DatasetRole.VIEWER})

    page = operator.get(reverse("admin:processing_rejectedrow_change", args=[row.pk])).content.decode()
    assert 'name="raw"' not in page  # shown, not editable
    response = operator.post(
        reverse("admin:processing_rejectedrow_changelist"),
        {"action": "revalidate_and_load", "_selected_action": [row.pk]},
        follow=True,
    )
    assert "needs the ingester role" in response.content.decode()
    assert not Run.objects.filter(parent=run).exists()


def test_records_files_and_the_dashboard_show_only_granted_datasets(
    sales: Dataset, hidden: Dataset, csv_file: Callable[..., Path]
) -> None:
    ingest(sales, csv_file, sales_row(1))
    ingest(hidden, csv_file, sales_row(2))
    operator = operator_with({sales: DatasetRole.VIEWER})

    assert operator.get(reverse("admin:processing_records", args=["sales"])).status_code == 200
    assert operator.get(reverse("admin:processing_records", args=["hidden-sales"])).status_code == 404
    assert operator.get(reverse("admin:processing_record", args=["hidden-sales", "S2"])).status_code == 404
    files = operator.get(reverse("admin:ingestion_rawfile_changelist")).content.decode()
    assert "sales.csv" in files and "hidden-sales.csv" not in files
    datasets = operator.get(reverse("admin:ingestion_dataset_changelist")).content.decode()
    assert "Hidden sales" not in datasets and "hidden-sales" not in datasets
    dashboard = operator.get(reverse("admin:index")).content.decode()
    assert "hidden-sales" not in dashboard and "sales" in dashboard


def test_an_operator_uploads_only_where_the_api_would_let_them(
    sales: Dataset, hidden: Dataset, csv_file: Callable[..., Path]
) -> None:
    operator = operator_with({sales: DatasetRole.VIEWER})
    path = csv_file("\n".join([SALES_HEADER, sales_row(1)]) + "\n")

    for dataset in (sales, hidden):
        with path.open("rb") as fh:
            response = operator.post(reverse("admin:processing_run_upload"), {"dataset": dataset.pk, "file": fh})
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not RawFile.objects.exists()

    with path.open("rb") as fh:
        stored = raw_file_receive(dataset=hidden, source=fh, original_name="x.csv")
    assert operator.get(reverse("admin:processing_run_preview", args=[stored.pk])).status_code == 404


def test_the_upload_form_lists_the_datasets_a_grant_allows(sales: Dataset, hidden: Dataset) -> None:
    operator = operator_with({sales: DatasetRole.INGESTER})

    page = operator.get(reverse("admin:processing_run_upload")).content.decode()
    assert f'<option value="{sales.pk}">' in page and f'<option value="{hidden.pk}">' not in page


def test_sources_follow_the_grants_too(sales: Dataset, hidden: Dataset, make_source: Callable[..., Source]) -> None:
    mine = make_source()
    theirs = source_create(dataset=hidden, data={"name": "theirs", "url": mine.url}, secret="")
    viewer = operator_with({sales: DatasetRole.VIEWER})

    listing = viewer.get(reverse("admin:ingestion_source_changelist")).content.decode()
    assert "partner" in listing and "theirs" not in listing
    assert viewer.post(reverse("admin:ingestion_source_pull", args=[theirs.pk])).status_code == 404
    assert viewer.post(reverse("admin:ingestion_source_pull", args=[mine.pk])).status_code == 403
    assert viewer.post(reverse("admin:ingestion_source_preview", args=[mine.pk])).status_code == 403
    assert not Run.objects.exists()


@pytest.mark.parametrize("role", [None, DatasetRole.VIEWER, DatasetRole.INGESTER, DatasetRole.MANAGER])
def test_the_console_edits_a_schema_exactly_when_the_api_would(role: str | None, sales: Dataset) -> None:
    console = operator_with({sales: role} if role else {})
    user = get_user_model().objects.get(pk=console.session["_auth_user_id"])
    user.user_permissions.add(Permission.objects.get(content_type__app_label="ingestion", codename="change_dataset"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")

    by_api = api.put("/api/v1/datasets/sales/?dry_run=true", SALES_SCHEMA, format="json").status_code
    by_console = console.get(reverse("admin:ingestion_dataset_edit_schema", args=[sales.pk])).status_code

    expected = {None: (404, 404), DatasetRole.MANAGER: (200, 200)}.get(role, (403, 403))
    assert (by_api, by_console) == expected
