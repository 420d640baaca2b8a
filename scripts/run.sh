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

echo "DataFlow is running: http://127.0.0.1:${PORT}/admin/  (Ctrl-C stops the server and the worker)"
"$PY" manage.py qcluster &
worker=$!
"$VENV/bin/gunicorn" dataflow.wsgi:application --config dataflow/gunicorn.conf.py --bind "127.0.0.1:${PORT}" &
web=$!
stop() {
    trap - INT TERM EXIT
    kill -TERM "$web" 2>/dev/null || true
    # The cluster shuts down cleanly on SIGINT; give it a moment, then insist.
    kill -INT "$worker" 2>/dev/null || true
    for _ in $(seq 20); do
        kill -0 "$worker" 2>/dev/null || break
        sleep 1
    done
    pkill -KILL -P "$worker" 2>/dev/null || true
    kill -KILL "$worker" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT
# Whichever stops first (or Ctrl-C) stops the other.
wait -n "$web" "$worker" || true
