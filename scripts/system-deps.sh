#!/usr/bin/env bash
### Usage: scripts/system-deps.sh [--install] [dev|test|bench ...]
###
### Checks that the Debian packages of the named groups are installed (no group: all):
###   dev    what `make dev` runs: perlbal (storage nodes, the front proxy), its XS header
###          parser, memcached (the path cache)
###   test   dev, plus chromium (the browser test), shellcheck (the shell script checks),
###          mariadb-server (the MySQL tests' private server) and what building mysqlclient
###          needs (it has no wheel for Linux): gcc, libc6-dev, python3-dev, pkg-config,
###          libmariadb-dev
###   bench  dev, plus wrk
### With --install (and root), installs the missing ones with apt-get; without it, names
### them in one error with the command to run, and exits 1.
set -o errexit -o pipefail -o nounset

install=0
if [ "${1:-}" = "--install" ]; then
  install=1
  shift
fi
[ $# -gt 0 ] || set -- dev test bench

dev=(perlbal libperlbal-xs-httpheaders-perl memcached)
packages=()
for group in "$@"; do
  case "$group" in
  dev) packages+=("${dev[@]}") ;;
  test) packages+=("${dev[@]}" chromium shellcheck mariadb-server
    gcc libc6-dev python3-dev pkg-config libmariadb-dev) ;;
  bench) packages+=("${dev[@]}" wrk) ;;
  *)
    echo "system-deps.sh: unknown group '$group' (dev, test, bench)" >&2
    exit 2
    ;;
  esac
done

missing=()
for pkg in $(printf '%s\n' "${packages[@]}" | sort -u); do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$install" = 1 ] && [ "$(id -u)" = "0" ]; then
  echo "Installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  exit 0
fi

echo "Missing Debian packages: ${missing[*]}" >&2
echo "Install them as root (or with sudo): apt-get install ${missing[*]}   (as root, make deps does it)" >&2
exit 1
