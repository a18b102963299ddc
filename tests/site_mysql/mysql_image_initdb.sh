#!/usr/bin/env bash
### Usage: mysql_image_initdb.sh INITDB_DIR
# Runs the files of INITDB_DIR against a running server the way the mysql image does
# on a first start (docker_process_init_files: in glob order, under `set -eo pipefail`;
# a *.sh is sourced, so that it can call docker_process_sql, or run when executable; a
# *.sql is fed to docker_process_sql). The functions are those of the mysql stand-in
# image's entrypoint, which follows the official image's.
#
# Environment: SOCKET (the server's socket file), MYSQL_ROOT_PASSWORD or
# MYSQL_ROOT_PASSWORD_FILE, MYSQL_CLIENT (the client binary), MYSQL_DATABASE
# (optional, as in the image) and whatever the init files read.
set -eo pipefail
shopt -s nullglob

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 INITDB_DIR" >&2
    exit 1
fi
[ -n "${SOCKET:-}" ] || {
    echo "$0: SOCKET is not set" >&2
    exit 1
}
MYSQL_SOCKET="$SOCKET"
# shellcheck source=../../standin-images/mysql/docker-entrypoint.sh
. "$(dirname "$0")/../../standin-images/mysql/docker-entrypoint.sh"
file_env MYSQL_ROOT_PASSWORD
docker_process_init_files "$1"/*
