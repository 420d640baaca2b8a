"""The dataset page of the console writes through the same services as the API: same rules, same audit."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ingestion.models import AuditAction, AuditEvent, Dataset, DatasetGrant, DatasetRole
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from ingestion.services.grants import dataset_grant_set
from tests.conftest import SALES_SCHEMA
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


class _FormFields(HTMLParser):
    """The fields a browser would send for the page's change form, as it shows them."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and a.get("id") == "dataset_form":
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.data[name] = a.get("value") or "on"
            else:
                self.data[name] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea] += data


def change_url(dataset: Dataset) -> str:
    return reverse("admin:ingestion_dataset_change", args=[dataset.pk])


def shown_form(client: Client, dataset: Dataset) -> dict[str, Any]:
    page = client.get(change_url(dataset))
    assert page.status_code == 200
    parser = _FormFields()
    parser.feed(page.content.decode())
    return parser.data


def grant_rows(data: dict[str, Any]) -> dict[str, int]:
    """Index of each existing grant row of the inline, by grant id."""
    prefix = grant_prefix(data)
    return {int(data[f"{prefix}-{i}-id"]): i for i in range(int(data[f"{prefix}-TOTAL_FORMS"]))}


def grant_prefix(data: dict[str, Any]) -> str:
    return next(k for k in data if k.endswith("-TOTAL_FORMS") and "grant" in k).removesuffix("-TOTAL_FORMS")


@pytest.fixture
def managed() -> tuple[Dataset, DatasetGrant, Client]:
    dataset = dataset_apply(spec=schema_parse(SALES_SCHEMA)).dataset
    manager = UserFactory(username="mia")
    grant, _ = dataset_grant_set(dataset=dataset, role=DatasetRole.MANAGER, user=manager)
    admin = Client()
    admin.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return dataset, grant, admin


def test_the_last_manager_grant_cannot_be_deleted_from_the_console(
    managed: tuple[Dataset, DatasetGrant, Client],
) -> None:
    dataset, grant, admin = managed
    data = shown_form(admin, dataset)
    data[f"{grant_prefix(data)}-{grant_rows(data)[grant.pk]}-DELETE"] = "on"

    response = admin.post(change_url(dataset), data)

    assert response.status_code == 200  # the form again, with the reason
    assert "This is the last manager grant of dataset &#x27;sales&#x27;" in response.content.decode()
    assert DatasetGrant.objects.filter(pk=grant.pk, role=DatasetRole.MANAGER).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.GRANT_DELETED).exists()


def test_nor_demoted_to_viewer(managed: tuple[Dataset, DatasetGrant, Client]) -> None:
    dataset, grant, admin = managed
    data = shown_form(admin, dataset)
    data[f"{grant_prefix(data)}-{grant_rows(data)[grant.pk]}-role"] = DatasetRole.VIEWER

    response = admin.post(change_url(dataset), data)

    assert response.status_code == 200
    assert "last manager grant" in response.content.decode()
    grant.refresh_from_db()
    assert grant.role == DatasetRole.MANAGER


def test_handing_the_manager_role_over_in_one_save_is_audited(managed: tuple[Dataset, DatasetGrant, Client]) -> None:
    dataset, grant, admin = managed
    successor = UserFactory(username="noor")
    data = shown_form(admin, dataset)
    prefix = grant_prefix(data)
    new = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-{grant_rows(data)[grant.pk]}-DELETE"] = "on"
    data.update(
        {
            f"{prefix}-{new}-user": str(successor.pk),
            f"{prefix}-{new}-role": DatasetRole.MANAGER,
            f"{prefix}-{new}-dataset": str(dataset.pk),
            f"{prefix}-TOTAL_FORMS": str(new + 1),
        }
    )

    response = admin.post(change_url(dataset), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(DatasetGrant.objects.filter(dataset=dataset).values_list("user__username", "role")) == [
        ("noor", DatasetRole.MANAGER)
    ]
    events = AuditEvent.objects.filter(dataset=dataset, actor__username="root").order_by("pk")
    assert [(e.action, e.details["grantee"], e.details["role"]) for e in events] == [
        (AuditAction.GRANT_CHANGED, "user:noor", DatasetRole.MANAGER),
        (AuditAction.GRANT_DELETED, "user:mia", DatasetRole.MANAGER),
    ]


def test_settings_the_schema_file_owns_are_shown_not_edited(managed: tuple[Dataset, DatasetGrant, Client]) -> None:
    dataset, _, admin = managed
    data = shown_form(admin, dataset)
    assert not {"name", "description", "delimiter", "reject_threshold"} & set(data)
    data.update({"reject_threshold": "0.9", "delimiter": ";", "notify_on_success": "on"})

    response = admin.post(change_url(dataset), data)

    assert response.status_code == 302
    dataset.refresh_from_db()
    # The schema file's values stay; a notification setting changes, and says so in the audit trail.
    assert (dataset.reject_threshold, dataset.delimiter, dataset.notify_on_success) == (
        SALES_SCHEMA.get("reject_threshold"),
        SALES_SCHEMA.get("delimiter", ","),
        True,
    )
    event = AuditEvent.objects.get(action=AuditAction.DATASET_CHANGED, actor__username="root")
    assert event.details == {"changed": ["notify_on_success"]}
    assert "import a new version" in admin.get(change_url(dataset)).content.decode()
