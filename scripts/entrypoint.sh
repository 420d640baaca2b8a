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
        asked=0
        stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; }
        trap 'asked=1; stop' TERM INT
        # SIGTERM stops every consumer after its batch in hand; the first consumer to end
        # by itself (it failed) ends the others, so the container restarts whole.
        first=0
        wait -n || first=$?
        stop
        status=0
        for pid in "${pids[@]}"; do
            wait "$pid" || { code=$?; [ "$code" -eq 127 ] || status=$code; }  # 127: already reaped above
        done
        if [ "$asked" = 1 ]; then
            exit "$status"
        fi
        exit $(( first != 0 ? first : 1 ))
        ;;
    *)
        exec "$@"
        ;;
esac
