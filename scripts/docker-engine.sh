#!/usr/bin/env bash
### Usage: sudo scripts/docker-engine.sh
###
### Debian 12 without systemd (CI machines, containers): installs and starts the
### Docker engine the project verifies, and leaves an engine that already answers
### alone.
###   - docker.io (Engine 20.10) and iptables from Debian 12, debootstrap for
###     standin-images/build;
###   - Compose v2 and buildx, which Debian 12 lacks, from Debian 13's packages
###     (docker-compose 2.26, docker-buildx 0.13): downloaded with a separate apt
###     state, so nothing else on the machine is upgraded, installed with dpkg -i
###     (they need only glibc >= 2.34);
###   - dockerd started in the background (log: /var/log/dockerd.log) if none runs.
set -o errexit -o pipefail -o nounset

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { printf 'docker-engine: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root"
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for pkg in docker.io iptables debootstrap; do
    installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! installed docker-compose || ! installed docker-buildx; then
    state="$(mktemp -d)"
    trap 'rm -rf "$state"' EXIT
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
    printf 'deb %s trixie main\n' "$MIRROR" >"$state/sources.list"
    apt_trixie=(apt-get -qq -o "Dir::Etc::SourceList=$state/sources.list"
        -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$state/lists"
        -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root)
    log "downloading docker-compose and docker-buildx from Debian 13"
    "${apt_trixie[@]}" update
    (cd "$state" && "${apt_trixie[@]}" download docker-compose docker-buildx)
    dpkg -i "$state"/docker-compose_*.deb "$state"/docker-buildx_*.deb >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/dockerd.log)"
    setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || die "dockerd did not answer in 60 s; see /var/log/dockerd.log"
fi
log "Docker Engine $(docker version --format '{{.Server.Version}}'), $(docker compose version)"
