# Sourced by build.sh and the container tests: podman settings for this sandbox.
CINESENSE_PODMAN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$CINESENSE_PODMAN_DIR/containers.conf"
# Image tags: what docker-compose.yml names (see .env.example).
export CINESENSE_IMAGE_TAG=${CINESENSE_IMAGE_TAG:-0.1.0}
export PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm
export POSTGRES_IMAGE=docker.io/library/postgres:15.14-bookworm
