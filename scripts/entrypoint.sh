#!/usr/bin/env bash
# Container entrypoint. The first argument is the role:
#   web     wait for the database, apply migrations, collect static files, run gunicorn
#   worker  wait for the database, run the django-q2 cluster
#   streams wait for the database, run `manage.py consume` for each stream source in
#           STREAM_SOURCES (comma-separated); SIGTERM stops each after its batch in hand
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
    streams)
        IFS=',' read -ra sources <<< "${STREAM_SOURCES:-}"
        if [ "${#sources[@]}" -eq 0 ]; then
            echo "streams: STREAM_SOURCES names no source (e.g. STREAM_SOURCES=orders,events)" >&2
            exit 2
        fi
        pids=()
        for name in "${sources[@]}"; do
            "$PY" manage.py consume "${name// /}" --consumer "$(hostname)-${name// /}" &
            pids+=("$!")
        done
        stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; }
        trap stop TERM INT
        # The first consumer to end (stopped, or failed) ends the others: the container restarts whole.
        status=0
        wait -n || status=$?
        stop
        wait || true
        exit "$status"
        ;;
    *)
        exec "$@"
        ;;
esac
