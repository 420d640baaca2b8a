"""Datasets from the browser: a new dataset from a sample file, editing a schema, a version's diff."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from ingestion.models import AuditAction, AuditEvent, Dataset, DatasetGrant, DatasetRole, RawFile, SchemaVersion
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from ingestion.storage import data_storage
from processing.admin.datasets import SESSION_KEY
from processing.models import Run, RunTrigger
from processing.services.runs import file_ingest
from tests.conftest import SmallDisk
from tests.factories import UserFactory
from tests.records import records

pytestmark = pytest.mark.django_db

SAMPLE = "\n".join(
    [
        "order_id,placed,amount,country,note",
        "A1,2024-01-02,12.50,US,",
        "A2,2024-01-03,7,FR,gift",
        "A3,2024-01-04,N/A,DE,",
        "A4,2024-01-05,3.25,GB,late",
        "A5,2024-01-06,1.00,ES,",
    ]
)


class FormFields(HTMLParser):
    """What a browser would send for the form ``form_id`` as the page shows it (every value of a name)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.data: dict[str, list[str]] = {}
        self._in_form = False
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.data.setdefault(name, []).append(a.get("value") or "on")
            else:
                self.data[name] = [a.get("value") or ""]
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and ("selected" in a or not self.data[self._select]):
            # The selected option, else the first one (as a browser sends it).
            self.data[self._select] = [a.get("value") or ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea][0] += data


def shown(page: Any, form_id: str = "schema-form") -> dict[str, list[str]]:
    parser = FormFields(form_id)
    parser.feed(page.content.decode())
    assert parser.data, f"no form {form_id!r} on the page"
    return parser.data


def row_of(data: dict[str, list[str]], field: str) -> str:
    """The prefix of the row that edits ``field`` (``fields-2``)."""
    for name, values in data.items():
        if name.startswith("fields-") and name.endswith("-name") and values == [field]:
            return name.removesuffix("-name")
    raise AssertionError(f"no row for {field!r}")


def samples_kept() -> list[str]:
    """The sample files in the data storage."""
    storage = data_storage()
    return storage.listdir("samples")[1] if storage.exists("samples") else []


def client_with(*perms: str, superuser: bool = False) -> tuple[Client, Any]:
    user = UserFactory(is_staff=True, is_superuser=superuser)
    user.groups.add(Group.objects.get(name="Operators"))
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture
def creator() -> tuple[Client, Any]:
    """An operator who may also create datasets (Django's add permission), as the API requires."""
    return client_with("ingestion.add_dataset", "ingestion.change_dataset")


def read_sample(client: Client, path: Path, **extra: str) -> Any:
    with path.open("rb") as fh:
        return client.post(reverse("admin:ingestion_dataset_new"), {"file": fh, **extra})


# --- New dataset from a file ---------------------------------------------------------------------------------


def test_the_changelist_offers_a_new_dataset_from_a_file_and_add_leads_there(creator: tuple[Client, Any]) -> None:
    client, _ = creator
    page = client.get(reverse("admin:ingestion_dataset_changelist")).content.decode()
    assert reverse("admin:ingestion_dataset_new") in page and "New dataset from a file" in page
    response = client.get(reverse("admin:ingestion_dataset_add"))
    assert response.status_code == 302 and response["Location"] == reverse("admin:ingestion_dataset_new")


def test_without_the_add_permission_the_page_is_refused(csv_file: Callable[..., Path]) -> None:
    client, _ = client_with()
    assert client.get(reverse("admin:ingestion_dataset_new")).status_code == 403
    assert read_sample(client, csv_file(SAMPLE + "\n", name="orders.csv")).status_code == 403
    assert not samples_kept()


def test_a_sample_shows_the_inferred_schema_with_its_report(
    creator: tuple[Client, Any], csv_file: Callable[..., Path]
) -> None:
    client, _ = creator
    response = read_sample(client, csv_file(SAMPLE + "\n", name="orders.csv"))
    assert response.status_code == 302
    page = client.get(response["Location"])
    html = page.content.decode()

    # The report: per column the type and why, null tokens, the key check.
    assert 'id="inference-report"' in html and "5 rows sampled" in html
    assert "N/A" in html and "null values" in html
    assert "Proposed key: <strong>order_id</strong>" in html
    data = shown(page)
    assert data["dataset-slug"] == ["orders"]
    amount = row_of(data, "amount")
    assert data[f"{amount}-type"] == ["decimal"]
    assert json.loads(data[f"{amount}-constraints"][0]) == {"null_values": ["N/A"]}
    assert data[f"{row_of(data, 'order_id')}-key"] == ["on"]
    assert data[f"{row_of(data, 'order_id')}-required"] == ["on"]


def test_saving_creates_the_dataset_makes_its_creator_manager_and_continues_to_the_upload_preview(
    creator: tuple[Client, Any], csv_file: Callable[..., Path]
) -> None:
    client, user = creator
    fields_page = client.get(read_sample(client, csv_file(SAMPLE + "\n", name="orders.csv"))["Location"])
    data = shown(fields_page)
    data["dataset-name"] = ["Web orders"]
    note = row_of(data, "note")
    data[f"{note}-type"] = ["string"]
    data[f"{note}-transforms"] = ["strip", "upper"]
    data[f"{note}-indexed"] = ["on"]
    country = row_of(data, "country")
    data[f"{country}-constraints"] = [json.dumps({"pattern": "^[A-Z]{2}$"})]
    data[f"{country}-source"] = ["country"]

    response = client.post(fields_page.request["PATH_INFO"], data)

    dataset = Dataset.objects.get(slug="orders")
    raw_file = RawFile.objects.get(dataset=dataset)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:processing_run_preview", args=[raw_file.pk])
    assert dataset.name == "Web orders" and dataset.key_fields == ["order_id"]
    fields = {f["name"]: f for f in dataset.current_schema.definition["fields"]}
    assert fields["note"] == {"name": "note", "type": "string", "transforms": ["strip", "upper"], "indexed": True}
    assert fields["country"]["pattern"] == "^[A-Z]{2}$"
    assert DatasetGrant.objects.get(dataset=dataset, user=user).role == DatasetRole.MANAGER
    created = AuditEvent.objects.get(dataset=dataset, action=AuditAction.DATASET_CREATED)
    assert created.actor == user and created.details["schema_version"] == 1
    assert not AuditEvent.objects.filter(dataset=dataset, action=AuditAction.DATASET_CHANGED).exists()
    # The same sample file, byte for byte, continues as the first upload (nothing loaded yet).
    assert raw_file.original_name == "orders.csv" and raw_file.size == len(SAMPLE) + 1
    assert not Run.objects.filter(dataset=dataset).exists()
    assert not samples_kept()
    assert SESSION_KEY not in client.session or not client.session[SESSION_KEY]
    preview = client.get(response["Location"]).content.decode()
    assert 'id="column-mapping"' in preview and 'id="count-new">5<' in preview


def test_invalid_schemas_are_refused_with_the_row_they_concern(
    creator: tuple[Client, Any], csv_file: Callable[..., Path]
) -> None:
    client, _ = creator
    fields_page = client.get(read_sample(client, csv_file(SAMPLE + "\n", name="orders.csv"))["Location"])
    url = fields_page.request["PATH_INFO"]
    good = shown(fields_page)

    bad_regex = {**good, f"{row_of(good, 'country')}-constraints": ['{"pattern": "([A-Z"}']}
    page = client.post(url, bad_regex)
    assert page.status_code == 400 and "&#x27;pattern&#x27; is not a valid regular expression" in page.content.decode()

    duplicate = {**good, f"{row_of(good, 'note')}-name": ["country"]}
    page = client.post(url, duplicate)
    assert page.status_code == 400 and "field &#x27;country&#x27; is defined more than once" in page.content.decode()

    no_key = {k: v for k, v in good.items() if not k.endswith("-key")}
    page = client.post(url, no_key)
    assert page.status_code == 400 and "Tick &#x27;key&#x27; on at least one field" in page.content.decode()

    not_json = {**good, f"{row_of(good, 'amount')}-constraints": ["{min: 0"]}
    page = client.post(url, not_json)
    assert page.status_code == 400 and "Not valid JSON" in page.content.decode()

    key_not_required = {k: v for k, v in good.items() if k != f"{row_of(good, 'order_id')}-required"}
    page = client.post(url, key_not_required)
    assert page.status_code == 400 and "key field &#x27;order_id&#x27; must be required" in page.content.decode()

    bad_slug = {**good, "dataset-slug": ["Not A Slug"]}
    assert client.post(url, bad_slug).status_code == 400

    assert not Dataset.objects.filter(slug="orders").exists()
    # Nothing was lost: the sample is still there, and a valid form then saves.
    assert client.post(url, good).status_code == 302
    assert Dataset.objects.filter(slug="orders").exists()


def test_a_schema_file_imported_for_a_new_slug_makes_its_importer_manager_too(
    creator: tuple[Client, Any], csv_file: Callable[..., Path]
) -> None:
    client, user = creator
    schema = {**EVENTS, "slug": "imported"}
    with csv_file(json.dumps(schema), name="imported.json").open("rb") as fh:
        response = client.post(reverse("admin:ingestion_dataset_import"), {"schema_file": fh})
    dataset = Dataset.objects.get(slug="imported")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:ingestion_dataset_change", args=[dataset.pk])
    assert DatasetGrant.objects.get(dataset=dataset, user=user).role == DatasetRole.MANAGER
    assert AuditEvent.objects.get(dataset=dataset).action == AuditAction.DATASET_CREATED
    assert client.get(response["Location"]).status_code == 200  # the importer sees what they created


def test_an_existing_slug_is_a_conflict_on_the_slug_input(
    creator: tuple[Client, Any], csv_file: Callable[..., Path], sales: Dataset
) -> None:
    client, _ = creator
    fields_page = client.get(read_sample(client, csv_file(SAMPLE + "\n", name="orders.csv"), slug="sales")["Location"])
    page = client.post(fields_page.request["PATH_INFO"], shown(fields_page))
    assert page.status_code == 400
    assert "A dataset with the slug &#x27;sales&#x27; already exists." in page.content.decode()
    assert Dataset.objects.get(slug="sales").current_schema.number == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty"),
        (b"\n\n", "The file is empty"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 4, "This is"),
        (b"a,a\n1,2\n", "two columns of one name"),
        (b"x,y\n1,\n1,\n", "No column can be the key"),
    ],
)
def test_a_bad_sample_gets_a_clear_error_and_nothing_is_kept(
    creator: tuple[Client, Any], csv_file: Callable[..., Path], content: bytes, message: str
) -> None:
    client, _ = creator
    page = read_sample(client, csv_file(content, name="bad.csv"))
    assert page.status_code == 400 and message in page.content.decode()
    assert not samples_kept()
    assert not Dataset.objects.exists()


def test_a_sample_over_the_size_limit_is_refused(
    creator: tuple[Client, Any], csv_file: Callable[..., Path], settings: Any
) -> None:
    client, _ = creator
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_UPLOAD_SIZE": 100}
    page = read_sample(client, csv_file(SAMPLE * 3 + "\n", name="orders.csv"))
    assert page.status_code == 413 and "larger than the limit of 100 bytes" in page.content.decode()
    assert not samples_kept() and not Dataset.objects.exists()


def test_a_sample_on_a_full_disk_is_a_507_and_nothing_is_kept(
    creator: tuple[Client, Any], csv_file: Callable[..., Path], small_disk: SmallDisk
) -> None:
    client, _ = creator
    rows = [f"A{i},2024-01-02,{i}.50,US,{'n' * 60}" for i in range(20_000)]
    big = csv_file("\n".join(["order_id,placed,amount,country,note", *rows]) + "\n", name="orders.csv")
    assert big.stat().st_size > 1024 * 1024
    page = read_sample(client, big)
    assert page.status_code == 507 and "no space left" in page.content.decode()
    assert small_disk.files() == [] and not Dataset.objects.exists()


def test_a_sample_whose_encoding_cannot_be_detected_asks_for_it(
    creator: tuple[Client, Any], csv_file: Callable[..., Path]
) -> None:
    client, _ = creator
    text = "id,name\n" + "".join(f"{i},Ёлка ёжик щука {i}\n" for i in range(1, 6))
    path = csv_file(text.encode("cp1251"), name="names.csv")
    first = read_sample(client, path)
    if first.status_code == 400:  # undecided: the encoding input says so; given, it reads
        assert "encoding" in first.content.decode().lower()
    response = read_sample(client, path, encoding="cp1251")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "cp1251" in page


def test_a_sample_token_of_another_session_is_not_found(
    creator: tuple[Client, Any], csv_file: Callable[..., Path]
) -> None:
    client, _ = creator
    url = read_sample(client, csv_file(SAMPLE + "\n", name="orders.csv"))["Location"]
    other, _ = client_with("ingestion.add_dataset")
    assert other.get(url).status_code == 404


def test_discarding_the_sample_removes_it(creator: tuple[Client, Any], csv_file: Callable[..., Path]) -> None:
    client, _ = creator
    url = read_sample(client, csv_file(SAMPLE + "\n", name="orders.csv"))["Location"]
    assert samples_kept()
    response = client.post(url, {"_discard": "1"})
    assert response.status_code == 302
    assert not samples_kept()
    assert client.get(url).status_code == 404 and not Dataset.objects.exists()


# --- Editing a schema ------------------------------------------------------------------------------------------

EVENTS: dict[str, Any] = {
    "slug": "events",
    "name": "Events",
    "key": ["id"],
    "delimiter": ",",
    "fields": [
        {"name": "id", "type": "string", "required": True},
        {"name": "day", "type": "string"},
        {"name": "amount", "type": "string", "null_values": ["N/A"]},
    ],
}


@pytest.fixture
def events(csv_file: Callable[..., Path]) -> Dataset:
    dataset = dataset_apply(spec=schema_parse(json.loads(json.dumps(EVENTS)))).dataset
    path = csv_file("id,day,amount\ne1,2024-01-31,12\ne2,13/45/2023,7.5\ne3,2024-02-29,N/A\n")
    with path.open("rb") as fh:
        run = file_ingest(dataset=dataset, source=fh, original_name="events.csv")
    assert run.rows_inserted == 3
    return dataset


@pytest.fixture
def manager(events: Dataset) -> Client:
    client, user = client_with("ingestion.change_dataset")
    DatasetGrant.objects.create(dataset=events, user=user, role=DatasetRole.MANAGER)
    return client


def edit_url(dataset: Dataset) -> str:
    return reverse("admin:ingestion_dataset_edit_schema", args=[dataset.pk])


def preview_and_apply(client: Client, dataset: Dataset, data: dict[str, list[str]]) -> Any:
    """Preview the edited fields, then press Apply on the page the preview shows."""
    page = client.post(edit_url(dataset), {**data, "_preview": ["Preview"]})
    assert page.status_code == 200 and 'id="schema-apply"' in page.content.decode()
    return client.post(edit_url(dataset), {**shown(page), "_apply": ["Apply"]})


def test_the_form_is_prefilled_from_the_current_version_and_keeps_what_it_does_not_show(
    manager: Client, events: Dataset
) -> None:
    page = manager.get(edit_url(events))
    assert page.status_code == 200
    data = shown(page)
    assert data["dataset-slug"] == ["events"]
    assert json.loads(data[f"{row_of(data, 'amount')}-constraints"][0]) == {"null_values": ["N/A"]}
    assert edit_url(events) in manager.get(reverse("admin:ingestion_dataset_change", args=[events.pk])).content.decode()


def test_preview_shows_the_stored_records_that_would_fail_and_changes_nothing(manager: Client, events: Dataset) -> None:
    data = shown(manager.get(edit_url(events)))
    data[f"{row_of(data, 'day')}-type"] = ["date"]
    data["_preview"] = ["Preview"]

    page = manager.post(edit_url(events), data)

    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-checked="3" data-failing="1"' in html and "3 stored record(s) checked" in html
    assert "13/45/2023" in html and 'id="schema-apply"' in html
    assert Dataset.objects.get(pk=events.pk).current_schema.number == 1
    assert len(records(events)) == 3


def test_apply_goes_through_dataset_apply_quarantines_and_shows_the_version_diff(
    manager: Client, events: Dataset
) -> None:
    data = shown(manager.get(edit_url(events)))
    data[f"{row_of(data, 'day')}-type"] = ["date"]

    response = preview_and_apply(manager, events, data)

    events.refresh_from_db()
    assert events.current_schema.number == 2
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:ingestion_schemaversion_change", args=[events.current_schema.pk])
    quarantine = Run.objects.get(dataset=events, trigger=RunTrigger.SCHEMA_CHANGE)
    assert quarantine.rows_rejected == 1 and sorted(r.key for r in records(events)) == ["e1", "e3"]
    event = AuditEvent.objects.filter(dataset=events, action=AuditAction.DATASET_CHANGED).latest("at")
    assert event.details["records_quarantined"] == 1 and event.details["run"] == quarantine.pk

    page = manager.get(response["Location"]).content.decode()
    assert "1 stored record(s) no longer pass and were quarantined" in page
    assert "Compared with v1." in page and 'data-field="day"' in page
    assert '<del class="df-old">string</del> → <ins class="df-new">date</ins>' in page


def test_fields_changed_after_the_preview_are_previewed_again_not_applied(manager: Client, events: Dataset) -> None:
    data = shown(manager.get(edit_url(events)))
    data[f"{row_of(data, 'day')}-type"] = ["date"]
    previewed = shown(manager.post(edit_url(events), {**data, "_preview": ["Preview"]}))
    previewed[f"{row_of(previewed, 'amount')}-type"] = ["integer"]

    page = manager.post(edit_url(events), {**previewed, "_apply": ["Apply"]})

    assert page.status_code == 200 and "The schema changed since the preview" in page.content.decode()
    assert "&#x27;7.5&#x27; is not a whole number" in page.content.decode()  # the new preview
    assert Dataset.objects.get(pk=events.pk).current_schema.number == 1
    response = manager.post(edit_url(events), {**shown(page), "_apply": ["Apply"]})
    assert response.status_code == 302 and Dataset.objects.get(pk=events.pk).current_schema.number == 2


def test_a_version_applied_by_someone_else_since_the_preview_is_previewed_again(
    manager: Client, events: Dataset
) -> None:
    data = shown(manager.get(edit_url(events)))
    data[f"{row_of(data, 'day')}-type"] = ["date"]
    previewed = shown(manager.post(edit_url(events), {**data, "_preview": ["Preview"]}))
    other = json.loads(json.dumps(EVENTS))
    other["fields"].append({"name": "channel", "type": "string"})
    dataset_apply(spec=schema_parse(other))  # v2, from another door

    page = manager.post(edit_url(events), {**previewed, "_apply": ["Apply"]})

    assert page.status_code == 200 and "The schema changed since the preview" in page.content.decode()
    assert Dataset.objects.get(pk=events.pk).current_schema.number == 2


def test_an_edit_that_changes_nothing_keeps_the_version(manager: Client, events: Dataset) -> None:
    data = shown(manager.get(edit_url(events)))
    response = preview_and_apply(manager, events, data)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:ingestion_dataset_change", args=[events.pk])
    assert SchemaVersion.objects.filter(dataset=events).count() == 1


def test_a_new_key_for_stored_data_is_refused_on_the_page(manager: Client, events: Dataset) -> None:
    data = shown(manager.get(edit_url(events)))
    data[f"{row_of(data, 'day')}-required"] = ["on"]
    data[f"{row_of(data, 'day')}-key"] = ["on"]
    page = manager.post(edit_url(events), {**data, "_preview": ["Preview"]})
    assert page.status_code == 400 and "its key cannot change" in page.content.decode()
    assert Dataset.objects.get(pk=events.pk).current_schema.number == 1


def test_a_field_added_and_one_removed_in_the_form(manager: Client, events: Dataset) -> None:
    data = shown(manager.get(edit_url(events)))
    data[f"{row_of(data, 'amount')}-DELETE"] = ["on"]
    extra = f"fields-{int(data['fields-TOTAL_FORMS'][0]) - 1}"
    data.update({f"{extra}-name": ["channel"], f"{extra}-type": ["string"], f"{extra}-constraints": [""]})
    response = preview_and_apply(manager, events, data)
    assert response.status_code == 302
    names = [f["name"] for f in Dataset.objects.get(pk=events.pk).current_schema.definition["fields"]]
    assert names == ["id", "day", "channel"]
    page = manager.get(response["Location"]).content.decode()
    assert 'class="df-diff-added" data-field="channel"' in page
    assert 'class="df-diff-removed" data-field="amount"' in page


def test_editing_needs_the_manager_role_on_the_dataset(events: Dataset) -> None:
    ingester, user = client_with("ingestion.change_dataset")
    DatasetGrant.objects.create(dataset=events, user=user, role=DatasetRole.INGESTER)
    assert ingester.get(edit_url(events)).status_code == 403
    data = {"dataset-name": ["x"], "fields-TOTAL_FORMS": ["0"], "fields-INITIAL_FORMS": ["0"], "_apply": ["1"]}
    assert ingester.post(edit_url(events), data).status_code == 403
    stranger, _ = client_with("ingestion.change_dataset")
    assert stranger.get(edit_url(events)).status_code == 404
    assert Dataset.objects.get(pk=events.pk).current_schema.number == 1


def test_the_first_version_page_lists_every_field_as_added(manager: Client, events: Dataset) -> None:
    page = manager.get(reverse("admin:ingestion_schemaversion_change", args=[events.current_schema.pk]))
    html = page.content.decode()
    assert "The first version of the dataset" in html
    assert html.count('class="df-diff-added"') == 3
