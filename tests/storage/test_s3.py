"""The data storage in an S3 bucket (DATA_STORAGE_URL=s3://...) against a real SeaweedFS server."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from dataflow.settings.storage import data_storage_config
from ingestion.models import Dataset, DatasetRole, RawFile
from ingestion.storage import S3DataStorage, StorageUnavailable, data_storage, storage_errors
from processing.models import Run, RunStatus
from processing.services.runs import run_execute
from tests.api.conftest import API, bearer, error_of, grant, sales_csv
from tests.cluster import ROOT
from tests.conftest import sales_row
from tests.factories import UserFactory
from tests.records import records

from .conftest import Bucket, files_under, requires_weed, use_bucket
from .seaweed import READ_ONLY_ACCESS_KEY, READ_ONLY_SECRET_KEY, SeaweedServer

ROWS = [sales_row(n) for n in range(1, 41)] + ["BAD,not-a-date,books,1,1,x@example.com,US,,yes"]


# --- Configuration (no server needed) -------------------------------------------


def test_local_disk_stays_the_default(tmp_path: Path) -> None:
    assert data_storage_config({}, tmp_path) == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path)},
    }


def test_a_bucket_url_configures_django_storages(tmp_path: Path) -> None:
    config = data_storage_config(
        {
            "DATA_STORAGE_URL": "s3://my-bucket/team/dataflow/",
            "S3_ENDPOINT_URL": "http://127.0.0.1:8333",
            "AWS_ACCESS_KEY_ID": "ak",
            "AWS_SECRET_ACCESS_KEY": "sk",
            "AWS_DEFAULT_REGION": "eu-west-1",
        },
        tmp_path,
    )
    options = config["OPTIONS"]
    assert config["BACKEND"] == "ingestion.storage.S3DataStorage"
    assert (options["bucket_name"], options["location"], options["endpoint_url"]) == (
        "my-bucket",
        "team/dataflow",
        "http://127.0.0.1:8333",
    )
    assert (options["access_key"], options["secret_key"], options["region_name"]) == ("ak", "sk", "eu-west-1")
    assert options["file_overwrite"] is False


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DATA_STORAGE_URL": "gs://bucket/x"}, "use s3://BUCKET/PREFIX"),
        ({"DATA_STORAGE_URL": "s3:///prefix"}, "is not a valid bucket name"),
        ({"DATA_STORAGE_URL": "s3://My_Bucket/x"}, "My_Bucket is not a valid bucket name"),
        ({"DATA_STORAGE_URL": "s3://ak:sk@bucket/x"}, "put no credentials or port in the URL"),
        ({"DATA_STORAGE_URL": "s3://bucket/a/../b"}, "has an empty, '.' or '..' part"),
        ({"DATA_STORAGE_URL": "s3://bucket/x?region=eu"}, "takes no ?query"),
        ({"DATA_STORAGE_URL": "s3://bucket", "S3_ENDPOINT_URL": "localhost:9000"}, "S3_ENDPOINT_URL='localhost:9000'"),
        ({"DATA_STORAGE_URL": "s3://bucket", "AWS_ACCESS_KEY_ID": "ak"}, "set both AWS_ACCESS_KEY_ID"),
        ({"DATA_STORAGE_URL": "s3://bucket", "DATA_STORAGE_BACKEND": "x.Storage"}, "are both set"),
    ],
)
def test_a_malformed_setting_is_refused_with_a_clear_message(
    environ: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message.replace("?", r"\?").replace("(", r"\(")):
        data_storage_config(environ, tmp_path)


def test_a_malformed_url_stops_start_up(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATA_STORAGE_URL": "s3:/bucket",
        "DATA_DIR": str(tmp_path),
        "DATAFLOW_ENV_FILE": "/dev/null",
        "SECRET_KEY": "x",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode != 0
    assert "DATA_STORAGE_URL='s3:/bucket'" in done.stderr
    assert "is not a valid bucket name" in done.stderr


# --- Against the server -----------------------------------------------------------


@requires_weed
@pytest.mark.django_db
def test_an_api_upload_and_its_run_keep_every_file_in_the_bucket(bucket: Bucket, sales: Dataset) -> None:
    user = UserFactory(username="ingester")
    grant(sales, user, DatasetRole.INGESTER)
    client = bearer(user)
    body = sales_csv(ROWS).encode()

    response = client.post(
        f"{API}/datasets/sales/uploads/",
        data=body,
        content_type="text/csv",
        HTTP_CONTENT_DISPOSITION='attachment; filename="day.csv"',
    )
    assert response.status_code == 202, response.content
    raw = RawFile.objects.get()
    assert bucket.objects() == [f"dataflow/{raw.storage_name}"]  # pending: raw/ in the bucket

    run = run_execute(run_id=response.json()["id"])
    run = Run.objects.get(pk=response.json()["id"])

    assert (run.status, run.rows_read, run.rows_inserted, run.rows_rejected) == (
        RunStatus.PARTIALLY_SUCCEEDED,
        41,
        40,
        1,
    )
    raw.refresh_from_db()
    processed = run.summary["processed_file"]
    assert raw.storage_name.startswith("archive/sales/")
    assert bucket.objects() == sorted([f"dataflow/{raw.storage_name}", f"dataflow/{processed}"])
    with data_storage().open(raw.storage_name, "rb") as fh:
        assert fh.read() == body
    with data_storage().open(processed, "rb") as fh:
        lines = fh.read().decode().splitlines()
    assert lines[0].startswith("_line,id,")
    assert len(lines) == 41
    assert files_under(bucket.data_dir) == []  # nothing on the local disk, not even scratch

    exported = client.get(f"{API}/datasets/sales/export/", {"format": "csv"})
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert sorted(r["id"] for r in rows) == sorted(f"S{n}" for n in range(1, 41))


@requires_weed
@pytest.mark.django_db
def test_ingest_csv_stores_raw_processed_and_archive_in_the_bucket(
    bucket: Bucket, sales: Dataset, tmp_path: Path
) -> None:
    source = tmp_path / "input" / "day.csv"
    source.parent.mkdir()
    source.write_text(sales_csv(ROWS))
    out = io.StringIO()

    call_command("ingest_csv", str(source), dataset="sales", json=True, chunk_size=7, stdout=out, stderr=io.StringIO())

    result = json.loads(out.getvalue())
    assert (result["rows_inserted"], result["rows_rejected"]) == (40, 1)
    run = Run.objects.get()
    raw = RawFile.objects.get()
    keys = bucket.objects()
    assert keys == sorted([f"dataflow/{raw.storage_name}", f"dataflow/{run.summary['processed_file']}"])
    assert any(k.startswith("dataflow/archive/sales/") for k in keys)
    assert any(k.startswith("dataflow/processed/sales/") for k in keys)
    assert records(sales).count() == 40
    assert files_under(bucket.data_dir) == []


@requires_weed
def test_reads_are_ranged_and_seekable(bucket: Bucket) -> None:
    storage = data_storage()
    assert isinstance(storage, S3DataStorage)
    payload = bytes(range(256)) * 40_000  # 10 MB: a multipart upload
    name = storage.save("raw/x/big.bin", ContentFile(payload))

    with storage.open(name, "rb") as fh:
        assert fh.read(10) == payload[:10]
        fh.seek(5_000_000)
        assert fh.read(1000) == payload[5_000_000:5_001_000]
        fh.seek(-3, os.SEEK_END)
        assert fh.read() == payload[-3:]
    with pytest.raises(FileNotFoundError):
        storage.open("raw/x/missing.bin", "rb")
    assert storage.save("raw/x/big.bin", ContentFile(b"other")) != name  # never overwritten silently
    assert bucket.objects()[0] == "dataflow/raw/x/big.bin"


@requires_weed
@pytest.mark.django_db
def test_wrong_credentials_fail_the_ingest_cleanly_and_turn_health_red(
    bucket: Bucket, sales: Dataset, settings: Any, tmp_path: Path
) -> None:
    use_bucket(settings, bucket, AWS_SECRET_ACCESS_KEY="not-the-secret")
    source = tmp_path / "day.csv"
    source.write_text(sales_csv(ROWS))

    with pytest.raises(CommandError, match="object storage answered HTTP 403 Forbidden"):
        call_command("ingest_csv", str(source), dataset="sales", stdout=io.StringIO(), stderr=io.StringIO())

    assert not RawFile.objects.exists()
    assert not Run.objects.exists()
    assert bucket.objects() == []
    assert files_under(bucket.data_dir) == []
    status, results = health(Client())
    assert status == 503
    assert "SignatureDoesNotMatch" in storage_check(results)


@requires_weed
@pytest.mark.django_db
def test_health_covers_the_bucket(bucket: Bucket) -> None:
    _, results = health(Client())
    assert storage_check(results) == "OK"
    assert any(k.startswith(f"DataStorage(s3://{bucket.name}/dataflow)") for k in results)
    assert bucket.objects() == []  # the test file is gone again


@requires_weed
@pytest.mark.django_db
def test_a_run_whose_processed_file_cannot_be_stored_fails_and_stores_no_part_of_it(
    bucket: Bucket, sales: Dataset, settings: Any
) -> None:
    user = UserFactory(username="ingester")
    grant(sales, user, DatasetRole.INGESTER)
    response = bearer(user).post(
        f"{API}/datasets/sales/uploads/",
        data=sales_csv(ROWS).encode(),
        content_type="text/csv",
        HTTP_CONTENT_DISPOSITION='attachment; filename="day.csv"',
    )
    assert response.status_code == 202
    raw = RawFile.objects.get()
    # From now on the bucket can be read but refuses every write.
    use_bucket(settings, bucket, AWS_ACCESS_KEY_ID=READ_ONLY_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=READ_ONLY_SECRET_KEY)

    with pytest.raises(ClientError):  # the worker's task fails; the run records why
        run_execute(run_id=response.json()["id"])

    run = Run.objects.get(pk=response.json()["id"])
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("the data storage failed (AccessDenied)")
    assert "processed_file" not in run.summary
    assert bucket.objects() == [f"dataflow/{raw.storage_name}"]  # the raw file, whole; no processed file at all
    with data_storage().open(raw.storage_name, "rb") as fh:
        assert fh.read() == sales_csv(ROWS).encode()
    assert files_under(bucket.data_dir) == []


def health(client: Client) -> tuple[int, dict[str, str]]:
    response = client.get("/health/", HTTP_ACCEPT="application/json")
    return response.status_code, response.json()


def storage_check(results: dict[str, str]) -> str:
    return next(v for k, v in results.items() if k.startswith("DataStorage("))


# --- A server that goes away --------------------------------------------------------


@pytest.fixture
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed-own"))
    server.start()
    yield server
    server.stop()


@requires_weed
@pytest.mark.django_db
def test_a_stopped_server_fails_the_run_cleanly_and_turns_health_red(
    own_server: SeaweedServer, settings: Any, data_dir: Path, sales: Dataset
) -> None:
    own_server.client().create_bucket(Bucket="dataflow-own")
    made = Bucket(own_server, "dataflow-own", "p", data_dir)
    use_bucket(settings, made)
    user = UserFactory(username="ingester")
    grant(sales, user, DatasetRole.INGESTER)
    client: APIClient = bearer(user)
    response = client.post(
        f"{API}/datasets/sales/uploads/",
        data=sales_csv(ROWS).encode(),
        content_type="text/csv",
        HTTP_CONTENT_DISPOSITION='attachment; filename="day.csv"',
    )
    assert response.status_code == 202
    assert health(Client())[1] and storage_check(health(Client())[1]) == "OK"

    own_server.stop()

    run_id = response.json()["id"]
    with pytest.raises(EndpointConnectionError):  # the worker's task fails; the run records why
        run_execute(run_id=run_id)
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.FAILED
    assert "data storage" in run.error
    assert "processed_file" not in run.summary
    assert records(sales).count() == 0
    assert files_under(data_dir) == []
    status, results = health(Client())
    assert status == 503
    assert "EndpointConnectionError" in storage_check(results)

    again = client.post(
        f"{API}/datasets/sales/uploads/",
        data=sales_csv(ROWS).encode(),
        content_type="text/csv",
        HTTP_CONTENT_DISPOSITION='attachment; filename="again.csv"',
    )
    assert again.status_code == 503
    assert "object storage answered EndpointConnectionError" in error_of(again)["message"]
    assert RawFile.objects.count() == 1
    with pytest.raises(StorageUnavailable), storage_errors():
        data_storage().save("raw/x.csv", ContentFile(b"x"))
