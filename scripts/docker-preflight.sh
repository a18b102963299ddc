#!/usr/bin/env bash
### Usage: scripts/docker-preflight.sh
###
### What `make up` checks before it builds anything: the docker CLI, a reachable
### engine >= 20.10, Compose v2 >= 2.26, and the base images compose.yaml and the
### Dockerfiles start from (present, or pulled now). Each failure names what is
### missing and what to install. Minimums are the versions this project verifies:
### Docker Engine 20.10.24 (Debian 12's docker.io) and Compose 2.26.1.
set -o errexit -o pipefail -o nounset

MIN_ENGINE=20.10
MIN_COMPOSE=2.26
COMPOSE="${COMPOSE:-docker compose}"
# The images pulled from a registry: compose.yaml's `image:` for mysql and memcached,
# the Dockerfiles' FROM (their DEBIAN_IMAGE / PYTHON_IMAGE defaults).
BASE_IMAGES=(debian:bookworm-slim python:3.11-slim-bookworm mysql:8.4 memcached:1.6)

fail() {
    printf 'make up: %s\n' "$1" >&2
    shift
    for line; do printf '  %s\n' "$line" >&2; done
    exit 1
}

# version_at_least HAVE WANT: both dotted numbers; leading "v" and suffixes ignored.
version_at_least() {
    local have want
    have="$(sed -E 's/^v//; s/[^0-9.].*$//' <<<"$1")"
    want=$2
    [[ -n $have ]] && [[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" == "$want" ]]
}

command -v docker >/dev/null ||
    fail "the docker command is not installed." \
        "Debian/Ubuntu: sudo apt-get install docker.io (Engine >= $MIN_ENGINE)," \
        "or Docker's own packages: https://docs.docker.com/engine/install/" \
        "Without Docker, 'make dev' runs the same topology natively."

if ! info_error="$(docker info 2>&1 >/dev/null)"; then
    fail "no Docker engine is reachable (docker info failed):" \
        "$(tail -n1 <<<"$info_error")" \
        "Start it (sudo systemctl start docker, or as root: dockerd &)," \
        "or join the docker group to use it without sudo."
fi

engine="$(docker version --format '{{.Server.Version}}')"
version_at_least "$engine" "$MIN_ENGINE" ||
    fail "Docker Engine $engine is too old: $MIN_ENGINE or newer is needed."

if ! compose="$($COMPOSE version --short 2>/dev/null)"; then
    fail "Docker Compose v2 is not installed ('$COMPOSE version' failed)." \
        "Install the Compose v2 plugin: docker-compose-plugin (Docker's packages)," \
        "docker-compose-v2 (Ubuntu), or docker-compose >= 2.26 (Debian 13)." \
        "The old Python docker-compose 1.x cannot run this compose.yaml."
fi
version_at_least "$compose" "$MIN_COMPOSE" ||
    fail "Docker Compose $compose is too old: $MIN_COMPOSE or newer is needed."

for image in "${BASE_IMAGES[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    echo "Pulling $image"
    if ! pull_error="$(docker pull --quiet "$image" 2>&1 >/dev/null)"; then
        fail "cannot pull $image: no container registry is reachable from this engine:" \
            "$(tail -n1 <<<"$pull_error")" \
            "Without a registry, build local stand-ins from Debian's archive:" \
            "  sudo make standin-images    (see standin-images/README.md)"
    fi
done
echo "Docker Engine $engine, Compose $compose: OK"
