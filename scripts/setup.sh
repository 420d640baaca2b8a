#!/usr/bin/env bash
# Create the virtualenv, install the dependencies and write a local .env.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "DataFlow needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))." >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements-stamp"
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
    echo "Installing dependencies"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r requirements-dev.txt
    touch "$stamp"
fi
fernet_key() {
    "$VENV/bin/python" -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'
}
if [ ! -f .env ]; then
    secret="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))')"
    password="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))')"
    jwt_key="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))')"
    sed -e "s|^SECRET_KEY=.*|SECRET_KEY=$secret|" \
        -e "s|^DEMO_ADMIN_PASSWORD=.*|DEMO_ADMIN_PASSWORD=$password|" \
        -e "s|^HTTPS=.*|HTTPS=false|" \
        -e "s|^JWT_SIGNING_KEY=.*|JWT_SIGNING_KEY=$jwt_key|" \
        -e "s|^ENCRYPTION_KEYS=.*|ENCRYPTION_KEYS=$(fernet_key)|" \
        .env.example > .env
    echo "Wrote .env with a fresh SECRET_KEY and admin password (edit it to change settings)."
fi
if ! grep -q '^JWT_SIGNING_KEY=.' .env; then
    # A .env written before the REST API existed: give it a signing key of its own.
    jwt_key="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))')"
    if grep -q '^JWT_SIGNING_KEY=' .env; then
        sed -i "s|^JWT_SIGNING_KEY=.*|JWT_SIGNING_KEY=$jwt_key|" .env
    else
        echo "JWT_SIGNING_KEY=$jwt_key" >> .env
    fi
fi
if ! grep -q '^ENCRYPTION_KEYS=.' .env; then
    # A .env written before HTTP sources existed: give it an encryption key.
    if grep -q '^ENCRYPTION_KEYS=' .env; then
        sed -i "s|^ENCRYPTION_KEYS=.*|ENCRYPTION_KEYS=$(fernet_key)|" .env
    else
        echo "ENCRYPTION_KEYS=$(fernet_key)" >> .env
    fi
fi
