#!/usr/bin/env bash
# Run the test suite. SQLite by default; DATABASE_URL=postgres://… runs it on
# Postgres (Django creates and drops a test_<name> database).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
exec "$VENV/bin/python" -m pytest "$@"
