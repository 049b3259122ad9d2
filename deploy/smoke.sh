#!/usr/bin/env bash
# Build the images, start deploy/compose.yaml with its demo profile, run the deployed-stack browser journeys
# (tests/browser/test_deployed_journey.py) against it, then stop it and drop its volumes.
#
#     bash deploy/smoke.sh            # needs Docker (daemon + compose), and .venv from `python3 dev.py test`
#     KEEP=1 bash deploy/smoke.sh     # leave the stack running afterwards
#
# Where no container registry is reachable, the base image comes from Debian's mirror (debootstrap) and PostgreSQL
# and Redis from deploy/local-images/, built from Debian's packages; the compose file is the same.
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=sgp-smoke
PORT=${PORT:-18000}
COMPOSE=(docker compose)
docker compose version >/dev/null 2>&1 || COMPOSE=(docker-compose)

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1 && ! docker pull -q debian:bookworm-slim; then
    echo "No registry: building debian:bookworm-slim with debootstrap"
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    tar -C "$rootfs" -c . | docker import - debian:bookworm-slim
    rm -rf "$rootfs"
fi
export POSTGRES_IMAGE=postgres:16 REDIS_IMAGE=redis:7
if ! docker pull -q "$POSTGRES_IMAGE" >/dev/null 2>&1 || ! docker pull -q "$REDIS_IMAGE" >/dev/null 2>&1; then
    echo "No registry: PostgreSQL and Redis images from Debian's packages (deploy/local-images)"
    export POSTGRES_IMAGE=sgp-local/postgres:15 REDIS_IMAGE=sgp-local/redis:7
    docker build -q -f deploy/local-images/postgres.Dockerfile -t "$POSTGRES_IMAGE" deploy/local-images >/dev/null
    docker build -q -f deploy/local-images/redis.Dockerfile -t "$REDIS_IMAGE" deploy/local-images >/dev/null
fi
# A build network that re-signs TLS (a company proxy) needs its certificate inside the image.
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then cp "$PIP_CERT" deploy/build/build-network.crt; fi

env_file=$(mktemp)
trap 'rm -f "$env_file"' EXIT
venv_python=.venv/bin/python
cat > "$env_file" <<ENV
SECRET_KEY=$($venv_python -c "import secrets; print(secrets.token_urlsafe(50))")
CREDENTIALS_KEYS=$($venv_python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")
POSTGRES_PASSWORD=$($venv_python -c "import secrets; print(secrets.token_hex(16))")
POSTGRES_IMAGE=$POSTGRES_IMAGE
REDIS_IMAGE=$REDIS_IMAGE
PORTAL_PORT=$PORT
PUBLIC_PORT=$PORT
PLATFORM_HOSTS=localhost
BEHIND_TLS_PROXY=false
SECURE_COOKIES=false
DEMO_SANDBOX_HOST=sandboxes
CONNECTOR_ALLOWED_HOSTS=sandboxes
EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend
ENV
cp "$env_file" deploy/.env
compose() { "${COMPOSE[@]}" -p "$PROJECT" -f deploy/compose.yaml --env-file deploy/.env --profile demo "$@"; }
stop() { [ -n "${KEEP:-}" ] || compose down -v --remove-orphans >/dev/null 2>&1 || true; rm -f deploy/.env "$env_file"; }
trap stop EXIT

compose build
compose up -d
echo "Waiting for the web tier and the demo data"
for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" \
        && [ "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(compose ps -q demo)")" = "exited 0" ]; then
        break
    fi
    sleep 5
done
compose ps
curl -fsS "http://127.0.0.1:$PORT/healthz"; echo
DEPLOYED_PORT=$PORT PORTAL_ENV=test DATABASE_URL=postgresql://unused@127.0.0.1:9/unused \
    "$venv_python" -m pytest -p no:randomly -p no:cacheprovider tests/browser/test_deployed_journey.py -v
