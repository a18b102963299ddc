#!/usr/bin/env bash
# As the official image: `docker run memcached:1.6 -m 64` means `memcached -m 64`.
set -o errexit -o nounset
if [[ ${1:-} == -* ]]; then
    set -- memcached "$@"
fi
exec "$@"
