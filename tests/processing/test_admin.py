"""The admin as operations console, through the Django test client."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from ingestion.models import Dataset, DatasetGrant, DatasetRole, RawFile
from processing.models import RejectedRow, Run, RunStatus
from processing.services.runs import run_execute
from tests.conftest import SALES_HEADER, SALES_SCHEMA, SmallDisk, sales_row
from tests.factories import UserFactory
from tests.records import records_total, stored_record, stored_record_keys
from tests.rejects import row_form_data

pytestmark = pytest.mark.django_db

BAD_ROW = "S9,2024-01-02,games,1,1,a@example.com,US,,yes"


def client_for(
    group: str | None = None, *, superuser: bool = False, grants: dict[Dataset, str] | None = None
) -> Client:
    """A console user in ``group``, holding ``grants`` (dataset: role) as the API's grants."""
    user = UserFactory(is_staff=True, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    for dataset, role in (grants or {}).items():
        DatasetGrant.objects.create(dataset=dataset, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator(sales: Dataset) -> Client:
    return client_for("Operators", grants={sales: DatasetRole.INGESTER})


@pytest.fixture
def viewer(sales: Dataset) -> Client:
    return client_for("Viewers", grants={sales: DatasetRole.VIEWER})


def upload(client: Client, dataset: Dataset, path: Path, **extra: str) -> Any:
    with path.open("rb") as fh:
        return client.post(
            reverse("admin:processing_run_upload"), {"dataset": dataset.pk, "file": fh, **extra}, follow=True
        )


def sales_file(csv_file: Callable[..., Path], rows: list[str], header: str = SALES_HEADER) -> Path:
    return csv_file("\n".join([header, *rows]) + "\n")


def test_an_operator_uploads_reads_the_preview_and_confirms(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path], django_capture_on_commit_callbacks: Any
) -> None:
    response = upload(operator, sales, sales_file(csv_file, [sales_row(1), sales_row(2), BAD_ROW]))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="column-mapping"' in page
    assert "customer_email" in page and "unknown column" not in page
    assert '<strong id="count-new">2</strong>' in page
    assert '<strong id="count-rejected">1</strong>' in page
    assert "&#x27;games&#x27; is not one of books, toys" in page
    assert not Run.objects.exists() and not (records_total() > 0)

    raw_file = RawFile.objects.get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        confirmed = operator.post(
            reverse("admin:processing_run_preview", args=[raw_file.pk]), {"action": "confirm"}, follow=True
        )
    run = Run.objects.get()
    assert confirmed.redirect_chain[-1][0] == reverse("admin:processing_run_change", args=[run.pk])
    assert (run.status, run.trigger, run.started_by.groups.get().name) == (RunStatus.QUEUED, "admin", "Operators")
    assert len(callbacks) == 1  # the task is handed to the queue once the run is committed

    run_execute(run_id=run.pk)
    progress = operator.get(reverse("admin:processing_run_progress", args=[run.pk])).json()
    assert progress["status"] == "partially_succeeded"
    assert progress["finished"] is True
    assert {k: progress[k] for k in ("rows_read", "rows_valid", "rows_rejected", "rows_inserted")} == {
        "rows_read": 3,
        "rows_valid": 2,
        "rows_rejected": 1,
        "rows_inserted": 2,
    }
    assert (progress["rows_updated"], progress["rows_unchanged"]) == (0, 0)


def test_the_preview_highlights_missing_and_unknown_columns_and_refuses_to_confirm(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    header = SALES_HEADER.replace("quantity", "qty") + ",notes"
    response = upload(operator, sales, sales_file(csv_file, [sales_row(1) + ",hello"], header=header))

    page = response.content.decode()
    assert "missing required column &#x27;quantity&#x27;" in page
    assert "missing required column</span>" in page
    assert "unknown column: ignored" in page
    assert 'id="confirm"' not in page


def test_the_dialect_can_be_overridden_in_the_preview(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    sales.delimiter = ""
    sales.save()
    upload(operator, sales, sales_file(csv_file, [sales_row(1)]))
    raw_file = RawFile.objects.get()
    operator.post(
        reverse("admin:processing_run_preview", args=[raw_file.pk]),
        {"action": "dialect", "encoding": "cp1252", "delimiter": ";"},
    )

    raw_file.refresh_from_db()
    assert (raw_file.encoding, raw_file.delimiter, raw_file.encoding_confidence) == ("cp1252", ";", "given")


def test_discarding_a_preview_removes_the_file(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    upload(operator, sales, sales_file(csv_file, [sales_row(1)]))
    raw_file = RawFile.objects.get()
    operator.post(reverse("admin:processing_run_preview", args=[raw_file.pk]), {"action": "discard"})

    assert not RawFile.objects.exists()
    assert not (data_dir / raw_file.storage_name).exists()


def test_an_upload_over_the_size_limit_is_refused(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path], settings: Any, data_dir: Path
) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_UPLOAD_SIZE": 100}
    response = upload(operator, sales, sales_file(csv_file, [sales_row(i) for i in range(10)]))

    assert "larger than the limit of 100 bytes" in response.content.decode()
    assert not RawFile.objects.exists()
    assert not list((data_dir / "raw").rglob("*.csv"))


def test_an_oversized_upload_stops_streaming_and_leaves_no_temporary_file(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path], settings: Any, tmp_path: Path
) -> None:
    temp_dir = tmp_path / "upload-tmp"
    temp_dir.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temp_dir)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1  # every upload goes to a temporary file
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_UPLOAD_SIZE": 100_000}
    big = sales_file(csv_file, [sales_row(i, description="x" * 200) for i in range(2000)])  # ~500 kB

    response = upload(operator, sales, big)

    assert "larger than the limit of 100000 bytes" in response.content.decode()
    assert list(temp_dir.iterdir()) == []
    assert not RawFile.objects.exists()


def test_a_viewer_can_watch_but_not_upload_or_operate(
    sales: Dataset, viewer: Client, operator: Client, csv_file: Callable[..., Path]
) -> None:
    upload(operator, sales, sales_file(csv_file, [sales_row(1)]))
    raw_file = RawFile.objects.get()
    operator.post(reverse("admin:processing_run_preview", args=[raw_file.pk]), {"action": "confirm"})
    run = Run.objects.get()

    assert viewer.get(reverse("admin:processing_run_changelist")).status_code == 200
    page = viewer.get(reverse("admin:processing_run_change", args=[run.pk])).content.decode()
    assert 'id="run-progress"' in page and 'id="action-cancel"' not in page
    assert viewer.get(reverse("admin:processing_run_upload")).status_code == 403
    assert viewer.post(reverse("admin:processing_run_cancel", args=[run.pk])).status_code == 403
    assert Run.objects.get().status == RunStatus.QUEUED


def test_cancel_retry_and_replay_from_the_run_page(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    upload(operator, sales, sales_file(csv_file, [sales_row(1), BAD_ROW]))
    operator.post(reverse("admin:processing_run_preview", args=[RawFile.objects.get().pk]), {"action": "confirm"})
    run = Run.objects.get()

    operator.post(reverse("admin:processing_run_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.CANCELLED, "cancelled before it started")

    response = operator.post(reverse("admin:processing_run_retry", args=[run.pk]), follow=True)
    retry = Run.objects.get(parent=run)
    assert response.redirect_chain[-1][0] == reverse("admin:processing_run_change", args=[retry.pk])
    run_execute(run_id=retry.pk)
    retry.refresh_from_db()
    assert (retry.status, retry.rows_inserted, retry.raw_file_id) == (
        RunStatus.PARTIALLY_SUCCEEDED,
        1,
        run.raw_file_id,
    )

    response = operator.post(reverse("admin:processing_run_retry", args=[retry.pk]), follow=True)
    assert "Only failed or cancelled runs can be retried" in response.content.decode()

    operator.post(reverse("admin:processing_run_replay", args=[retry.pk]))
    replay = Run.objects.get(parent=retry)
    run_execute(run_id=replay.pk)
    replay.refresh_from_db()
    assert (replay.forced, replay.rows_unchanged, replay.noop_of_id) == (True, 1, None)


def test_cancelling_a_running_run_asks_it_to_stop_at_the_next_chunk(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    upload(operator, sales, sales_file(csv_file, [sales_row(i) for i in range(1, 7)]))
    operator.post(reverse("admin:processing_run_preview", args=[RawFile.objects.get().pk]), {"action": "confirm"})
    run = Run.objects.get()
    Run.objects.filter(pk=run.pk).update(chunk_size=2)

    def cancel_after_first_chunk(current: Run) -> None:
        if current.rows_read == 2:
            operator.post(reverse("admin:processing_run_cancel", args=[current.pk]))

    finished = run_execute(run_id=run.pk, on_chunk=cancel_after_first_chunk)

    assert finished is not None
    assert (finished.status, finished.rows_read, finished.rows_inserted) == (RunStatus.CANCELLED, 2, 2)
    assert records_total() == 2


def test_an_operator_fixes_a_rejected_row_and_loads_it(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    upload(
        operator, sales, sales_file(csv_file, [sales_row(1), BAD_ROW, "S10,2024-01-02,toys,1,x,b@example.com,US,,no"])
    )
    operator.post(reverse("admin:processing_run_preview", args=[RawFile.objects.get().pk]), {"action": "confirm"})
    run = Run.objects.get()
    run_execute(run_id=run.pk)
    bad = RejectedRow.objects.get(run=run, line_number=3)
    still_bad = RejectedRow.objects.get(run=run, line_number=4)

    response = operator.post(
        reverse("admin:processing_rejectedrow_change", args=[bad.pk]),
        row_form_data(bad, category="books"),
        follow=True,
    )
    assert response.status_code == 200
    assert RejectedRow.objects.get(pk=bad.pk).raw["category"] == "books"

    response = operator.post(
        reverse("admin:processing_rejectedrow_changelist"),
        {"action": "revalidate_and_load", "_selected_action": [bad.pk, still_bad.pk]},
        follow=True,
    )

    fix_run = Run.objects.get(parent=run)
    assert "loaded 1 of 2 rows" in response.content.decode()
    assert stored_record(key="S9").last_run_id == fix_run.pk
    assert not RejectedRow.objects.filter(run=run).exists()
    moved = RejectedRow.objects.get(run=fix_run)
    assert moved.errors == {"quantity": ["'x' is not a whole number"]}
    run.refresh_from_db()
    assert run.rows_fixed == 1


def test_a_viewer_cannot_edit_rejected_rows(sales: Dataset, viewer: Client, csv_file: Callable[..., Path]) -> None:
    from processing.services.runs import file_ingest

    with sales_file(csv_file, [BAD_ROW]).open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh)
    row = RejectedRow.objects.get(run=run)

    response = viewer.post(reverse("admin:processing_rejectedrow_change", args=[row.pk]), row_form_data(row))
    assert response.status_code == 403
    changelist = viewer.get(reverse("admin:processing_rejectedrow_changelist")).content.decode()
    assert "revalidate_and_load" not in changelist


def test_records_show_their_data_and_lineage(sales: Dataset, viewer: Client, csv_file: Callable[..., Path]) -> None:
    from processing.services.runs import file_ingest

    with sales_file(csv_file, [sales_row(1), sales_row(2)]).open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name="march.csv")
    record = stored_record(key="S2")

    listing = viewer.get(reverse("admin:processing_records", args=["sales"]) + f"?q=S2&run={run.pk}")
    assert listing.status_code == 200
    # The keys as the table shows them (the page's random CSRF token may hold "S1" too).
    assert re.findall(r'<tr><td><a href="[^"]*">([^<]*)</a></td>', listing.content.decode()) == ["S2"]
    assert "<th>email</th>" in listing.content.decode() and "u2@example.com" in listing.content.decode()
    page = viewer.get(reverse("admin:processing_record", args=["sales", record.key])).content.decode()
    assert "march.csv" in page and "line 3" in page and "schema v1" in page
    assert "&quot;email&quot;: &quot;u2@example.com&quot;" in page


def test_schema_files_are_imported_and_exported(db: None, tmp_path: Path) -> None:
    admin_client = client_for(superuser=True)
    schema = tmp_path / "sales.json"
    schema.write_text(json.dumps(SALES_SCHEMA))
    with schema.open("rb") as fh:
        response = admin_client.post(reverse("admin:ingestion_dataset_import"), {"schema_file": fh}, follow=True)
    dataset = Dataset.objects.get(slug="sales")
    assert "Created dataset &#x27;sales&#x27; (new schema v1)" in response.content.decode()

    exported = admin_client.get(reverse("admin:ingestion_dataset_export", args=[dataset.pk]))
    assert exported["Content-Disposition"] == 'attachment; filename="sales.schema.json"'
    assert json.loads(exported.content)["fields"][5] == {
        "name": "email",
        "type": "email",
        "required": True,
        "source": "customer_email",
    }

    bad = tmp_path / "bad.json"
    bad.write_text('{"slug": "sales", "key": ["id"], "fields": [{"name": "id", "type": "money"}]}')
    with bad.open("rb") as fh:
        response = admin_client.post(reverse("admin:ingestion_dataset_import"), {"schema_file": fh})
    assert "unknown type &#x27;money&#x27;" in response.content.decode()
    page = admin_client.get(reverse("admin:ingestion_dataset_change", args=[dataset.pk])).content.decode()
    assert "customer_email" in page and "Export schema file" in page


def test_the_dashboard_charts_runs_and_rows(sales: Dataset, viewer: Client, csv_file: Callable[..., Path]) -> None:
    from processing.services.runs import file_ingest

    with sales_file(csv_file, [sales_row(1), BAD_ROW]).open("rb") as fh:
        file_ingest(dataset=sales, source=fh)
    page = viewer.get(reverse("admin:index")).content.decode()

    assert page.count('class="df-chart"') == 2
    assert "partially succeeded: 1</title>" in page
    assert "loaded: 1</title>" in page and "rejected: 1</title>" in page
    assert "sales" in page and "Partially Succeeded" in page
    data_page = reverse("admin:processing_data", args=["sales"])
    assert f'href="{data_page}"' in page
    assert "S1" in viewer.get(data_page).content.decode()


def test_rows_whose_values_were_replaced_are_not_reloaded_until_edited(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    from processing.services.runs import file_ingest

    with sales_file(csv_file, [sales_row(1, description="a\x00b"), BAD_ROW]).open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh)
    nul_row = RejectedRow.objects.get(run=run, line_number=2)
    bad_row = RejectedRow.objects.get(run=run, line_number=3)
    assert nul_row.raw["description"] == "a\u2400b"

    response = operator.post(
        reverse("admin:processing_rejectedrow_changelist"),
        {"action": "revalidate_and_load", "_selected_action": [nul_row.pk, bad_row.pk]},
        follow=True,
    )

    assert "1 row(s) stayed in quarantine" in response.content.decode()
    assert RejectedRow.objects.filter(pk=nul_row.pk).exists()  # untouched, still to edit
    assert "S1" not in stored_record_keys()
    nul_row.raw = {**nul_row.raw, "description": "ab"}
    nul_row.save()
    operator.post(
        reverse("admin:processing_rejectedrow_changelist"),
        {"action": "revalidate_and_load", "_selected_action": [nul_row.pk]},
    )
    assert stored_record(key="S1").data["description"] == "ab"


def test_an_upload_to_a_full_disk_is_a_507_with_a_form_error(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path], small_disk: SmallDisk
) -> None:
    big = sales_file(csv_file, [sales_row(i, description="d" * 40) for i in range(12_000)])
    assert big.stat().st_size > 1024 * 1024

    response = upload(operator, sales, big)

    assert response.status_code == 507
    assert "no space left" in response.content.decode()
    assert not RawFile.objects.exists() and not Run.objects.exists()
    assert small_disk.files() == []


def test_an_upload_to_a_read_only_disk_is_a_503_with_a_form_error(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path], small_disk: SmallDisk
) -> None:
    small_disk.make_read_only()

    response = upload(operator, sales, sales_file(csv_file, [sales_row(1)]))

    assert response.status_code == 503
    assert "read-only" in response.content.decode()
    assert not RawFile.objects.exists() and not Run.objects.exists()
