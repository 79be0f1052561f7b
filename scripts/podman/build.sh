#!/usr/bin/env bash
# Builds every image docker-compose.yml runs, with Debian's podman, on this machine.
#
# The sandbox cannot pull from Docker Hub, so the two official images the build starts from
# are stood in by local builds under the same tags: python:…-slim-bookworm (a debootstrapped
# bookworm with python3) and postgres:…-bookworm (Debian's PostgreSQL). The project's own
# Dockerfiles then build unchanged; only build arguments point pip at the machine's CA
# bundle and CPU torch wheel. Layers and pip downloads are cached by podman, so a second
# run takes seconds. Docker image format: OCI images ignore SHELL (bash -o pipefail).
#
#   scripts/podman/build.sh            # everything (first run: ~debootstrap + pip installs)
#   CINESENSE_PODMAN_CACHE=DIR ...     # where the debootstrapped root is kept
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/podman/env.sh

CACHE=${CINESENSE_PODMAN_CACHE:-/var/tmp/cinesense-podman}
ROOTFS_IMAGE=localhost/cinesense-standin/debian-rootfs:bookworm
# The CA bundle pip is configured with, and the folder holding the local CPU torch wheel.
CA_BUNDLE=${CINESENSE_CA_BUNDLE:-$(pip config get global.cert 2>/dev/null || echo /etc/ssl/certs/ca-certificates.crt)}
WHEELS=${CINESENSE_TORCH_WHEELS:-$(pip config get global.find-links 2>/dev/null || true)}

log() { printf '[podman-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
have_image() { podman image exists "$1"; }

build() {  # build TAG CONTAINERFILE [extra args...]; CONTEXT (default: the repository)
    local tag=$1 file=$2
    shift 2
    log "building $tag from $file"
    nice -n 10 podman build --network=host --layers --format docker \
        -v "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
        -f "$file" -t "$tag" "$@" "${CONTEXT:-.}"
}

if ! have_image "$ROOTFS_IMAGE"; then
    if [ ! -x "$CACHE/rootfs/usr/bin/python3" ]; then
        log "debootstrap bookworm into $CACHE/rootfs"
        rm -rf "$CACHE/rootfs" && mkdir -p "$CACHE"
        nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$CACHE/rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log"
    fi
    log "importing the root file system as $ROOTFS_IMAGE"
    tar -C "$CACHE/rootfs" -c . | podman import - "$ROOTFS_IMAGE" >/dev/null
fi

build "$PYTHON_IMAGE" scripts/podman/python.Containerfile
CONTEXT=scripts/podman build "$POSTGRES_IMAGE" scripts/podman/postgres.Containerfile

build "localhost/cinesense/base:$CINESENSE_IMAGE_TAG" base.Dockerfile \
    --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"
base_arg="BASE_IMAGE=localhost/cinesense/base:$CINESENSE_IMAGE_TAG"
for service in fastapi:api streamlit:ui objectstore:objectstore mlflow:mlflow nginx:nginx; do
    build "localhost/cinesense/${service#*:}:$CINESENSE_IMAGE_TAG" "${service%:*}/Dockerfile" \
        --build-arg "$base_arg"
done
torch_args=(--build-arg "$base_arg")
if [ -n "$WHEELS" ] && ls "$WHEELS"/torch-*cpu*.whl >/dev/null 2>&1; then
    torch_args+=(-v "$WHEELS:/wheels:ro" --build-arg "TORCH_PIP_ARGS=--find-links /wheels")
fi
build "localhost/cinesense/airflow:$CINESENSE_IMAGE_TAG" airflow/Dockerfile "${torch_args[@]}"

podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'cinesense/|postgres' >&2
