"""The container's ``streams`` role: one consumer per source in STREAM_SOURCES, stopped cleanly by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.cluster import ROOT
from tests.dataflow.test_deployment import container_env

from .conftest import REDIS_URL, RedisStream, sale


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        check=True,
        timeout=120,
        input=stdin,
        text=True,
        capture_output=True,
    )


def test_the_streams_role_needs_sources(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts/entrypoint.sh"), "streams"],
        env=container_env(tmp_path, ENCRYPTION_KEYS="dGVzdC1vbmx5LWVuY3J5cHRpb24ta2V5LTAxMjM0NTY="),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "STREAM_SOURCES names no source" in result.stderr


def test_the_streams_role_consumes_each_source_and_stops_on_sigterm(tmp_path: Path, redis_stream: RedisStream) -> None:
    env = container_env(tmp_path, ENCRYPTION_KEYS="dGVzdC1vbmx5LWVuY3J5cHRpb24ta2V5LTAxMjM0NTY=", LOG_LEVEL="WARNING")
    manage(env, "migrate", "-v0")
    manage(env, "dataset_apply", str(ROOT / "bench" / "sales.schema.json"))
    spec = {
        "slug": "orders",
        "dataset": "sales",
        "kind": "redis_stream",
        "url": REDIS_URL,
        "stream": redis_stream.key,
        "group": redis_stream.group,
    }
    manage(env, "source_apply", "-", stdin=json.dumps(spec))
    redis_stream.add(*(sale(n) for n in range(1, 26)), "[]")
    log = tmp_path / "streams.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts/entrypoint.sh"), "streams"],
            env={**env, "STREAM_SOURCES": "orders"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    database = tmp_path / "db.sqlite3"

    def stored() -> int:
        with sqlite3.connect(database, timeout=10) as db:
            try:
                return int(db.execute('SELECT count(*) FROM "datasets__sales"').fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (stored() < 25 or redis_stream.pending()):
            assert proc.poll() is None, log.read_text()
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        status = proc.wait(timeout=60)

    assert stored() == 25, log.read_text()
    assert redis_stream.pending() == 0
    assert status == 0, log.read_text()
