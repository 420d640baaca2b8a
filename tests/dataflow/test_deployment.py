"""What the containers run, exercised outside Docker: entrypoint roles, gunicorn, compose and CI files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def container_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "dataflow.settings.base",
            "DATAFLOW_ENV_FILE": "/nonexistent",
            "SECRET_KEY": "deployment-test-secret",
            "DATA_DIR": str(tmp_path / "data"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "HTTPS": "false",
            "PYTHON_BIN": sys.executable,
            "GUNICORN_BIN": str(VENV_BIN / "gunicorn"),
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
            **extra,
        }
    )
    return env


def test_the_entrypoint_waits_for_the_database_then_runs_a_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts/entrypoint.sh"), sys.executable, "-c", "print('hello from the container')"],
        env=container_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Database is up.", "hello from the container"]


def test_wait_for_db_gives_up_with_a_clear_message(tmp_path: Path) -> None:
    env = container_env(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:9/nowhere")
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "wait_for_db", "--timeout", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "The database is not reachable after 1s" in result.stderr


def test_the_web_role_migrates_collects_static_and_serves_with_gunicorn(tmp_path: Path) -> None:
    port = free_port()
    env = container_env(tmp_path, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1")
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts/entrypoint.sh"), "web"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240  # migrations on a busy machine can be slow
        body = b""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live/", timeout=2) as response:
                    body = response.read()
                    break
            except OSError:
                time.sleep(0.3)
        assert body == b'{"status": "ok"}', log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/admin/css/base.css", timeout=5) as response:
            assert response.status == 200
        assert (tmp_path / "static" / "staticfiles.json").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    output = log.read_text()
    assert "Applying processing.0001_initial... OK" in output
    assert "Booting worker" in output


def test_the_worker_role_starts_a_cluster(tmp_path: Path) -> None:
    env = container_env(tmp_path)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True, timeout=120)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts/entrypoint.sh"), "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "running." not in log.read_text():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    output = log.read_text()
    assert "Q Cluster" in output and "running." in output


def test_the_worker_refuses_to_start_when_retry_is_not_above_timeout(tmp_path: Path) -> None:
    env = container_env(tmp_path, Q_TIMEOUT="600", Q_RETRY="600")
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "Q_RETRY (600s) must be greater than Q_TIMEOUT (600s)" in result.stderr


def test_the_compose_file_runs_postgres_web_and_worker_from_one_image() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    assert {"postgres", "web", "worker", "redis"} <= set(services)
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert services["web"]["command"] == ["web"] and services["worker"]["command"] == ["worker"]
    assert services["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["redis"]["profiles"] == ["redis"]


def test_the_dockerfile_is_multi_stage_slim_and_not_root() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]

    assert len(stages) == 2 and all("-slim" in line for line in stages)
    assert "USER dataflow" in lines
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert 'ENTRYPOINT ["/app/scripts/entrypoint.sh"]' in lines


def test_the_workflows_are_valid_and_gate_what_we_promise() -> None:
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    deploy = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())

    assert ci["jobs"]["test"]["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    assert ci["jobs"]["test"]["services"]["postgres"]["image"].startswith("postgres")
    steps = " ".join(str(step.get("run", "")) for job in ci["jobs"].values() for step in job["steps"])
    for tool in ("make lint", "--cov-fail-under=85", "bandit", "pip-audit"):
        assert tool in steps
    triggers = deploy.get("on", deploy.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    assert deploy["jobs"]["production"]["environment"] == "production"
    assert deploy["jobs"]["production"]["needs"] == ["image", "staging"]


@pytest.mark.parametrize("script", ["setup.sh", "test.sh", "deploy.sh", "run.sh", "entrypoint.sh"])
def test_the_shell_scripts_parse(script: str) -> None:
    result = subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def gunicorn_config(**env: str) -> dict[str, str]:
    """What gunicorn makes of dataflow/gunicorn.conf.py (``--print-config``) with these variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    result = subprocess.run(
        [str(VENV_BIN / "gunicorn"), "--config", "dataflow/gunicorn.conf.py", "--print-config", "dataflow.wsgi"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def test_gunicorn_runs_synchronous_workers_two_per_core_of_a_two_core_machine_by_default() -> None:
    # Sync workers take connections from the shared queue only when free:
    # threads (gthread) let one worker hoard keep-alive clients (docs/performance.md).
    config = gunicorn_config()

    assert (config["workers"], config["threads"]) == ("4", "1")


def test_gunicorn_workers_and_threads_follow_their_variables() -> None:
    config = gunicorn_config(GUNICORN_WORKERS="3", GUNICORN_THREADS="2")

    assert (config["workers"], config["threads"]) == ("3", "2")
