#!/usr/bin/env bash
# Deploy an image tag to a host running docker compose from this repository:
#   scripts/deploy.sh ENVIRONMENT TAG
# Needs DEPLOY_HOST (user@host) and DEPLOY_SSH_KEY (a private key). On the host,
# /srv/dataflow holds docker-compose.yml and .env. The web container applies
# migrations on start; the worker is restarted after it so both run the same code.
set -euo pipefail
environment="${1:?usage: deploy.sh ENVIRONMENT TAG}"
tag="${2:?usage: deploy.sh ENVIRONMENT TAG}"
: "${DEPLOY_HOST:?DEPLOY_HOST is not set}"
: "${DEPLOY_SSH_KEY:?DEPLOY_SSH_KEY is not set}"

key="$(mktemp)"
trap 'rm -f "$key"' EXIT
printf '%s\n' "$DEPLOY_SSH_KEY" > "$key"
chmod 600 "$key"

echo "Deploying $tag to $environment ($DEPLOY_HOST)"
ssh -i "$key" -o StrictHostKeyChecking=accept-new "$DEPLOY_HOST" \
    "cd /srv/dataflow && export DATAFLOW_IMAGE_TAG='$tag' && docker compose pull web worker && docker compose up -d web && docker compose up -d worker && docker compose ps"
