"""The rejected-rows workbench: errors by kind on the run page, filters, the per-column form, bulk fixes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from ingestion.models import AuditAction, AuditEvent, Dataset, DatasetGrant, DatasetRole
from processing.models import RejectedRow, Run
from processing.reject_errors import error_groups, error_kind, rows_with_error
from processing.services.rejects import rejected_rows_discard, rejected_rows_replace
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, sales_row
from tests.factories import UserFactory
from tests.records import stored_record_keys
from tests.rejects import row_form_data

pytestmark = pytest.mark.django_db

KIND = "… is not an ISO 8601 date-time"


def console_user(group: str, grants: dict[Dataset, str]) -> Any:
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    for dataset, role in grants.items():
        DatasetGrant.objects.create(dataset=dataset, user=user, role=role)
    return user


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def fixer(sales: Dataset) -> Any:
    return console_user("Operators", {sales: DatasetRole.INGESTER})


@pytest.fixture
def operator(fixer: Any) -> Client:
    return logged_in(fixer)


@pytest.fixture
def bad_run(sales: Dataset, csv_file: Callable[..., Path]) -> Run:
    """A run with three slashed timestamps, one bad quantity and one good row."""
    rows = [
        sales_row(1),
        "S2,2024/01/02T03:04:05Z,books,2.50,1,u2@example.com,us,,yes",
        "S3,2024/01/03T03:04:05Z,books,3.50,1,u3@example.com,us,,yes",
        "S4,2024-01-04T03:04:05Z,books,4.50,many,u4@example.com,us,,yes",
        "S5,2024/01/05T03:04:05Z,books,5.50,1,u5@example.com,us,,yes",
    ]
    path = csv_file("\n".join([SALES_HEADER, *rows]) + "\n")
    with path.open("rb") as fh:
        return file_ingest(dataset=sales, source=fh)


def changelist(client: Client, **params: Any) -> Any:
    return client.get(reverse("admin:processing_rejectedrow_changelist"), params)


def listed_lines(response: Any) -> list[int]:
    return sorted(r.line_number for r in response.context["cl"].result_list)


def act(client: Client, action: str, rows: list[RejectedRow], **inputs: str) -> str:
    data = {"action": action, "_selected_action": [r.pk for r in rows], **inputs}
    response = client.post(reverse("admin:processing_rejectedrow_changelist"), data, follow=True)
    assert response.status_code == 200
    return str(response.content.decode())


def test_a_message_kind_leaves_out_the_quoted_values_and_numbers() -> None:
    assert error_kind("'2024/01/02' is not an ISO 8601 date-time") == KIND
    assert error_kind('"it\'s" is not an ISO 8601 date-time') == KIND
    assert error_kind("must be at most 64 characters long (got 70)") == "must be at most 64 characters long (got #)"
    assert error_kind("duplicate value 'a\\'b', first seen on line 12") == "duplicate value …, first seen on line #"


def test_the_run_page_counts_errors_by_field_and_kind_and_links_to_them(bad_run: Run, operator: Client) -> None:
    groups = error_groups(RejectedRow.objects.filter(run=bad_run))
    assert [(g.field, g.kind, g.count, g.lines) for g in groups] == [
        ("timestamp", KIND, 3, [3, 4, 6]),
        ("quantity", "… is not a whole number", 1, [5]),
    ]

    page = operator.get(reverse("admin:processing_run_change", args=[bad_run.pk]))
    assert page.status_code == 200
    rejects = page.context["reject_groups"]
    assert [(g["field"], g["kind"], g["count"]) for g in rejects] == [
        ("timestamp", KIND, 3),
        ("quantity", "… is not a whole number", 1),
    ]
    html = page.content.decode()
    assert "×3" in html and "&#x27;2024/01/02T03:04:05Z&#x27; is not an ISO 8601 date-time" in html
    assert [r.line_number for r in page.context["first_rejects"]] == [3, 4, 5, 6]

    # Each group's link is the filtered list of exactly its rows.
    listed = operator.get(rejects[0]["url"])
    assert listed_lines(listed) == [3, 4, 6]
    assert listed_lines(operator.get(rejects[1]["url"])) == [5]

    download = operator.get(page.context["rejects_csv_url"])
    assert download["Content-Type"].startswith("text/csv")
    exported = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert exported[0][:3] == ["_line", "_errors", "id"]
    assert [row[0] for row in exported[1:]] == ["3", "4", "5", "6"]


def test_the_list_filters_by_field_and_by_kind(bad_run: Run, operator: Client) -> None:
    assert listed_lines(changelist(operator, run__id__exact=bad_run.pk)) == [3, 4, 5, 6]
    assert listed_lines(changelist(operator, run__id__exact=bad_run.pk, error_field="timestamp")) == [3, 4, 6]
    assert listed_lines(changelist(operator, run__id__exact=bad_run.pk, error_field="quantity")) == [5]
    assert listed_lines(changelist(operator, error_field="timestamp", error_kind=KIND)) == [3, 4, 6]
    # A kind on another field matches nothing.
    assert listed_lines(changelist(operator, error_field="quantity", error_kind=KIND)) == []
    everything = RejectedRow.objects.all()
    assert rows_with_error(everything, kind="… is not a whole number").count() == 1


def test_the_row_form_has_one_input_per_column_with_its_error_and_saves_exactly_what_was_typed(
    bad_run: Run, operator: Client, fixer: Any
) -> None:
    row = RejectedRow.objects.get(run=bad_run, line_number=3)
    url = reverse("admin:processing_rejectedrow_change", args=[row.pk])
    page = operator.get(url).content.decode()
    assert 'name="col_1"' in page and ">timestamp" in page and 'value="2024/01/02T03:04:05Z"' in page
    assert "is not an ISO 8601 date-time" in page
    assert 'name="raw"' not in page

    typed = "  Café\u00a0crème \u2014 ok  "
    response = operator.post(url, row_form_data(row, timestamp="2024-01-02T03:04:05Z", description=typed))
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.raw["timestamp"] == "2024-01-02T03:04:05Z"
    assert row.raw["description"] == typed
    assert row.raw["id"] == "S2"
    event = AuditEvent.objects.get(action=AuditAction.REJECTED_ROWS_EDITED)
    assert event.actor == fixer and event.details["columns"] == ["description", "timestamp"]


def test_a_multiline_value_sent_back_with_crlf_is_kept_as_it_was(bad_run: Run, operator: Client) -> None:
    row = RejectedRow.objects.get(run=bad_run, line_number=3)
    row.raw = {**row.raw, "description": "first\nsecond"}
    row.save()
    data = row_form_data(row, description="first\r\nsecond", timestamp="2024-01-02T03:04:05Z")
    operator.post(reverse("admin:processing_rejectedrow_change", args=[row.pk]), data)
    row.refresh_from_db()
    assert row.raw["description"] == "first\nsecond"
    assert row.raw["timestamp"] == "2024-01-02T03:04:05Z"


def test_extra_values_of_a_ragged_row_are_shown_and_editable(
    sales: Dataset, operator: Client, csv_file: Callable[..., Path]
) -> None:
    path = csv_file(f"{SALES_HEADER}\n{sales_row(7)},surplus\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh)
    row = RejectedRow.objects.get(run=run)
    assert row.raw["__extra__"] == ["surplus"]
    url = reverse("admin:processing_rejectedrow_change", args=[row.pk])
    page = operator.get(url).content.decode()
    assert 'name="extra_0"' in page and 'value="surplus"' in page and "expected 9 values, got 10" in page
    operator.post(url, {**row_form_data(row), "extra_0": "changed"})
    row.refresh_from_db()
    assert row.raw["__extra__"] == ["changed"]


def test_set_a_column_to_a_value_on_the_selection(bad_run: Run, operator: Client) -> None:
    rows = list(rows_with_error(RejectedRow.objects.filter(run=bad_run), field="timestamp"))
    page = act(operator, "set_value", rows, column="timestamp", value="2024-02-02T00:00:00Z")
    assert "3 row(s) changed" in page
    assert {r.raw["timestamp"] for r in RejectedRow.objects.filter(pk__in=[r.pk for r in rows])} == {
        "2024-02-02T00:00:00Z"
    }
    assert RejectedRow.objects.get(run=bad_run, line_number=5).raw["timestamp"] == "2024-01-04T03:04:05Z"
    event = AuditEvent.objects.get(action=AuditAction.REJECTED_ROWS_EDITED)
    assert event.details["operation"] == "set" and event.details["changed"] == 3


def test_find_and_replace_counts_changed_rows_and_the_fixed_rows_then_load(bad_run: Run, operator: Client) -> None:
    rows = list(RejectedRow.objects.filter(run=bad_run))
    page = act(operator, "find_replace", rows, column="timestamp", find="/", replace="-")
    # Four rows selected; the bad quantity's timestamp had no slash.
    assert "3 row(s) changed" in page
    assert RejectedRow.objects.get(run=bad_run, line_number=4).raw["timestamp"] == "2024-01-03T03:04:05Z"

    page = act(operator, "revalidate_and_load", rows)
    assert "loaded 3 of 4 rows" in page
    assert {"S2", "S3", "S5"} <= set(stored_record_keys())
    fix_run = Run.objects.get(parent=bad_run)
    assert list(RejectedRow.objects.filter(run=fix_run).values_list("errors", flat=True)) == [
        {"quantity": ["'many' is not a whole number"]}
    ]


def test_find_needs_text_and_replaces_plainly(bad_run: Run, fixer: Any) -> None:
    ids = list(RejectedRow.objects.filter(run=bad_run).values_list("pk", flat=True))
    with pytest.raises(ValidationError):
        rejected_rows_replace(row_ids=ids, column="timestamp", find="", replace="x", user=fixer)
    # A dot is a dot, not "any character".
    assert rejected_rows_replace(row_ids=ids, column="timestamp", find=".", replace="!", user=fixer) == 0


def test_discarding_hides_rows_records_who_and_why_and_is_audited(
    bad_run: Run, operator: Client, fixer: Any, sales: Dataset
) -> None:
    rows = list(rows_with_error(RejectedRow.objects.filter(run=bad_run), field="timestamp"))

    page = act(operator, "discard", rows, reason="")
    assert "Say why these rows are discarded." in page
    assert not RejectedRow.objects.exclude(discarded_at=None).exists()

    page = act(operator, "discard", rows, reason="test orders from the staging shop")
    assert "Discarded 3 row(s)" in page
    for row in RejectedRow.objects.filter(pk__in=[r.pk for r in rows]):
        assert row.discarded_at is not None and row.discarded_by == fixer
        assert (row.discarded_by_name, row.discard_reason) == (fixer.username, "test orders from the staging shop")
    event = AuditEvent.objects.get(action=AuditAction.REJECTED_ROWS_DISCARDED)
    assert (event.actor, event.dataset, event.details["rows"]) == (fixer, sales, 3)
    assert event.details["reason"] == "test orders from the staging shop"

    assert listed_lines(changelist(operator, run__id__exact=bad_run.pk)) == [5]
    assert listed_lines(changelist(operator, run__id__exact=bad_run.pk, state="discarded")) == [3, 4, 6]
    assert listed_lines(changelist(operator, run__id__exact=bad_run.pk, state="all")) == [3, 4, 5, 6]
    run_page = operator.get(reverse("admin:processing_run_change", args=[bad_run.pk]))
    assert [g["field"] for g in run_page.context["reject_groups"]] == ["quantity"]
    assert run_page.context["rejects_discarded"] == 3

    # Discarded rows are out of quarantine: not edited, not reloaded, not listed by the API.
    assert act(operator, "set_value", rows, column="timestamp", value="x").count("0 row(s) changed") == 1
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(fixer).access_token}")
    listed = api.get(f"/api/v1/runs/{bad_run.pk}/rejected-rows/").json()
    assert [r["line_number"] for r in listed["results"]] == [5]


def test_a_user_without_the_fix_role_cannot_discard(bad_run: Run, sales: Dataset) -> None:
    # An operator of the console holding only the viewer role on this dataset.
    onlooker = console_user("Operators", {sales: DatasetRole.VIEWER})
    rows = list(RejectedRow.objects.filter(run=bad_run))
    page = act(logged_in(onlooker), "discard", rows, reason="not mine to judge")
    assert "needs the ingester role" in page
    with pytest.raises(PermissionDenied):
        rejected_rows_discard(row_ids=[r.pk for r in rows], reason="still not", user=onlooker)
    assert not RejectedRow.objects.exclude(discarded_at=None).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.REJECTED_ROWS_DISCARDED).exists()


def export(tmp_path: Path, **options: Any) -> str:
    target = tmp_path / "rejected.out"
    call_command("export_rejected", output=str(target), stderr=io.StringIO(), **options)
    return target.read_text(encoding="utf-8")


def test_export_rejected_of_a_dataset_writes_the_rows_still_in_quarantine(
    bad_run: Run, sales: Dataset, fixer: Any, csv_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = csv_file(f"{SALES_HEADER}\nS8,2024-01-02T03:04:05Z,books,1,x,u8@example.com,us,,yes\n")
    with path.open("rb") as fh:
        second = file_ingest(dataset=sales, source=fh)
    discarded = RejectedRow.objects.get(run=bad_run, line_number=3)
    rejected_rows_discard(row_ids=[discarded.pk], reason="duplicate of S1", user=fixer)

    exported = list(csv.reader(io.StringIO(export(tmp_path, dataset="sales"))))
    assert exported[0][:4] == ["_run", "_line", "_errors", "id"]
    assert [(r[0], r[1], r[3]) for r in exported[1:]] == [
        (str(bad_run.pk), "4", "S3"),
        (str(bad_run.pk), "5", "S4"),
        (str(bad_run.pk), "6", "S5"),
        (str(second.pk), "2", "S8"),
    ]

    by_run = list(csv.reader(io.StringIO(export(tmp_path, run=bad_run.pk))))
    assert [r[0] for r in by_run[1:]] == ["4", "5", "6"]

    as_json = json.loads(export(tmp_path, dataset="sales", format="json"))
    assert [(r["run"], r["line"]) for r in as_json] == [
        (bad_run.pk, 4),
        (bad_run.pk, 5),
        (bad_run.pk, 6),
        (second.pk, 2),
    ]

    with pytest.raises(CommandError, match="There is no dataset 'nope'"):
        export(tmp_path, dataset="nope")


def test_a_selection_larger_than_one_query_slice_is_handled_whole(
    bad_run: Run, fixer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("processing.services.rejects._SLICE", 2)
    ids = list(RejectedRow.objects.filter(run=bad_run).values_list("pk", flat=True))
    assert rejected_rows_replace(row_ids=ids, column="timestamp", find="T03", replace="T04", user=fixer) == 4
    assert rejected_rows_discard(row_ids=ids, reason="superseded", user=fixer) == 4
    assert not RejectedRow.objects.filter(run=bad_run, discarded_at=None).exists()
