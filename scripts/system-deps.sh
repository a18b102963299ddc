#!/usr/bin/env bash
### Usage: scripts/system-deps.sh [--install]
###
### Checks that the Debian packages the tests and `make dev` need are installed.
### With --install (and root), installs the missing ones with apt-get; without it,
### names them in one error with the command to run, and exits 1.
set -o errexit -o pipefail -o nounset

# perlbal: storage nodes and the front proxy; memcached: the path cache;
# chromium: the browser test; shellcheck: the shell script checks; wrk: make bench;
# mariadb-server: the MySQL tests' private server (tests/site_mysql);
# gcc, libc6-dev, python3-dev, pkg-config, libmariadb-dev: building mysqlclient
# (mysqlclient has no wheel for Linux).
packages=(perlbal libperlbal-xs-httpheaders-perl memcached chromium shellcheck wrk
  mariadb-server gcc libc6-dev python3-dev pkg-config libmariadb-dev)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "${1:-}" = "--install" ] && [ "$(id -u)" = "0" ]; then
  echo "Installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  exit 0
fi

echo "Missing Debian packages: ${missing[*]}" >&2
echo "Install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
