#!/usr/bin/env bash
# Fuzz the REST API with schemathesis against its own OpenAPI schema.
#
# Starts the app with gunicorn on 127.0.0.1 over a throwaway database (SQLite
# in a temporary folder, or FUZZ_DATABASE_URL, e.g. a fresh Postgres database
# that may be written to), loads the demo dataset, makes a user who manages it
# and may create datasets, and runs schemathesis with that user's token. Exits
# non-zero on any 5xx, any response outside the schema (status code, media
# type, headers, body), or if the server does not come up.
#
#   scripts/fuzz_api.sh                  # 25 examples per operation, seed 1
#   FUZZ_EXAMPLES=200 FUZZ_SEED=7 scripts/fuzz_api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
PORT="${FUZZ_PORT:-8765}"
EXAMPLES="${FUZZ_EXAMPLES:-25}"
SEED="${FUZZ_SEED:-1}"
BASE="http://127.0.0.1:${PORT}"

work="$(mktemp -d "${TMPDIR:-/tmp}/dataflow-fuzz.XXXXXX")"
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The app's whole configuration, isolated from any local .env.
export DATAFLOW_ENV_FILE=/nonexistent
export DEBUG=false HTTPS=false
export ALLOWED_HOSTS=127.0.0.1,localhost
export DATA_DIR="$work/data"
export DATABASE_URL="${FUZZ_DATABASE_URL:-sqlite:///$work/fuzz.sqlite3}"
SECRET_KEY="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')"
JWT_SIGNING_KEY="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')"
ENCRYPTION_KEYS="$("$PY" -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')"
export SECRET_KEY JWT_SIGNING_KEY ENCRYPTION_KEYS
export JWT_ACCESS_LIFETIME_MINUTES=240
# Fuzzing sends many requests quickly; throttling is tested by the test suite.
export API_THROTTLE_ANON=100000/minute API_THROTTLE_USER=100000/minute
export API_THROTTLE_AUTH=100000/minute API_THROTTLE_UPLOADS=100000/minute
export MAX_UPLOAD_SIZE=1048576
export GUNICORN_BIND="127.0.0.1:${PORT}" GUNICORN_WORKERS=1 GUNICORN_THREADS=4 GUNICORN_TIMEOUT=60

echo "== preparing a throwaway database in $work"
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py demo_setup --no-admin >/dev/null
TOKEN="$("$PY" manage.py shell -v0 -c '
from django.contrib.auth.models import Permission, User
from ingestion.models import Dataset, DatasetGrant
from processing.services.runs import file_ingest
from rest_framework_simplejwt.tokens import RefreshToken
import io
user = User.objects.create_user("fuzz", password="fuzz-password-1234")
user.user_permissions.add(Permission.objects.get(codename="add_dataset"))
sales = Dataset.objects.get(slug="sales")
DatasetGrant.objects.create(dataset=sales, user=user, role="manager")
# A failed run, so that retry has something to retry.
file_ingest(dataset=sales, source=io.BytesIO(b"id\nX1\n"), original_name="broken.csv")
print(RefreshToken.for_user(user).access_token)
')"

echo "== starting gunicorn on $BASE"
"$VENV/bin/gunicorn" dataflow.wsgi:application --config dataflow/gunicorn.conf.py \
    --access-logfile "$work/access.log" --error-logfile "$work/error.log" >"$work/server.log" 2>&1 &
server=$!
ready=""
for _ in $(seq 50); do
    if "$PY" -c "import urllib.request; urllib.request.urlopen('$BASE/api/schema/', timeout=2)" 2>/dev/null; then
        ready=1
        break
    fi
    if ! kill -0 "$server" 2>/dev/null; then
        echo "gunicorn did not start:" >&2
        cat "$work/error.log" "$work/server.log" >&2
        exit 1
    fi
    sleep 0.2
done
if [ -z "$ready" ]; then
    echo "gunicorn did not answer on $BASE/api/schema/:" >&2
    tail -n 20 "$work/error.log" "$work/server.log" >&2
    exit 1
fi

# Known objects for path parameters, so that most cases reach real data
# (the rest stay random and must answer 404).
cat >"$work/schemathesis.toml" <<'EOF'
[dictionaries.slugs]
values = ["sales"]

[dictionaries.ids]
values = ["1", "2"]

[dictionaries.keys]
values = ["S000000001", "S000000002", "S000000100"]

[parameters]
"path.slug" = { dictionary = "slugs", probability = 0.8 }
"path.id" = { dictionary = "ids", probability = 0.6 }
"path.key" = { dictionary = "keys", probability = 0.6 }
EOF

echo "== schemathesis: $EXAMPLES examples per operation, seed $SEED"
status=0
"$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" run "$BASE/api/schema/" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$EXAMPLES" \
    --seed "$SEED" \
    --workers 1 \
    --request-timeout 30 \
    --suppress-health-check all \
    --warnings off || status=$?

if grep -q '" 50[0-9] ' "$work/access.log"; then
    echo "The server answered 5xx:" >&2
    grep '" 50[0-9] ' "$work/access.log" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "== server log (tail)" >&2
    tail -n 50 "$work/error.log" "$work/server.log" >&2
fi
exit "$status"
