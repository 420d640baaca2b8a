#!/usr/bin/env bash
# Container entrypoint. The first argument is the role:
#   web     wait for the database, apply migrations, collect static files, run gunicorn
#   worker  wait for the database, run the django-q2 cluster
#   *       wait for the database, then run the arguments as a command (e.g. manage.py shell)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON_BIN:-python}"
role="${1:-web}"

"$PY" manage.py wait_for_db --timeout "${DB_WAIT_TIMEOUT:-60}"

case "$role" in
    web)
        "$PY" manage.py migrate --noinput
        "$PY" manage.py collectstatic --noinput -v0
        exec "${GUNICORN_BIN:-gunicorn}" dataflow.wsgi:application --config dataflow/gunicorn.conf.py
        ;;
    worker)
        exec "$PY" manage.py qcluster
        ;;
    *)
        exec "$@"
        ;;
esac
