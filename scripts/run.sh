#!/usr/bin/env bash
# Run DataFlow on this machine: migrate, load the demo dataset, then serve the
# web app (gunicorn) and a background worker (django-q2) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PORT="${PORT:-8000}"
PY="$VENV/bin/python"

"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v0
"$PY" manage.py demo_setup

"$PY" manage.py qcluster &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT INT TERM

echo "DataFlow is running: http://127.0.0.1:${PORT}/admin/  (Ctrl-C stops the server and the worker)"
"$VENV/bin/gunicorn" dataflow.wsgi:application --config dataflow/gunicorn.conf.py --bind "127.0.0.1:${PORT}"
