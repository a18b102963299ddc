#!/usr/bin/env bash
### Usage: mysql_image_initdb.sh INITDB_DIR
# Runs the files of INITDB_DIR against a running server the way the official mysql
# image's docker-entrypoint.sh does on a first start (docker_process_init_files):
# in glob order, under `set -eo pipefail`; a *.sh is sourced, so that it can call
# docker_process_sql (or run, when it is executable); a *.sql is fed to
# docker_process_sql. MYSQL_ROOT_PASSWORD may come from MYSQL_ROOT_PASSWORD_FILE
# (file_env), as in the image.
#
# Environment: SOCKET (the server's socket file), MYSQL_ROOT_PASSWORD or
# MYSQL_ROOT_PASSWORD_FILE, MYSQL_CLIENT (the client binary, default mysql),
# MYSQL_DATABASE (optional, as in the image) and whatever the init files read.
#
# Unlike the image's, the client reads only the password (--defaults-file, not this
# machine's option files) and is told to speak utf8mb4, MySQL 8's client default.
set -eo pipefail
shopt -s nullglob

mysql_note() {
    printf '%s [Note] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*"
}

mysql_error() {
    printf '%s [ERROR] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2
    exit 1
}

# usage: file_env VAR [DEFAULT] -- VAR from $VAR or from the file named by $VAR_FILE.
file_env() {
    local var="$1"
    local fileVar="${var}_FILE"
    local def="${2:-}"
    if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
        mysql_error "Both $var and $fileVar are set (but are exclusive)"
    fi
    local val="$def"
    if [ "${!var:-}" ]; then
        val="${!var}"
    elif [ "${!fileVar:-}" ]; then
        val="$(<"${!fileVar}")"
    fi
    export "$var"="$val"
    unset "$fileVar"
}

_mysql_passfile() {
    if [ '--dont-use-mysql-root-password' != "${1:-}" ] && [ -n "$MYSQL_ROOT_PASSWORD" ]; then
        printf '[client]\npassword="%s"\n' "$MYSQL_ROOT_PASSWORD"
    else
        printf '[client]\n'
    fi
}

# usage: docker_process_sql [--dont-use-mysql-root-password] [client args] < SQL
docker_process_sql() {
    local passfileArgs=()
    if [ '--dont-use-mysql-root-password' = "${1:-}" ]; then
        passfileArgs+=("$1")
        shift
    fi
    # Arguments given later override this database, as in the image.
    if [ -n "${MYSQL_DATABASE:-}" ]; then
        set -- --database="$MYSQL_DATABASE" "$@"
    fi
    "${MYSQL_CLIENT:-mysql}" --defaults-file=<(_mysql_passfile "${passfileArgs[@]}") \
        --default-character-set=utf8mb4 \
        --protocol=socket -uroot -hlocalhost --socket="${SOCKET}" --comments "$@"
}

docker_process_init_files() {
    local f
    for f; do
        case "$f" in
        *.sh)
            if [ -x "$f" ]; then
                mysql_note "$0: running $f"
                "$f"
            else
                mysql_note "$0: sourcing $f"
                # shellcheck source=/dev/null
                . "$f"
            fi
            ;;
        *.sql)
            mysql_note "$0: running $f"
            docker_process_sql <"$f"
            ;;
        *) mysql_note "$0: ignoring $f" ;;
        esac
    done
}

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    mysql_error "usage: $0 INITDB_DIR"
fi
[ -n "${SOCKET:-}" ] || mysql_error "SOCKET is not set"
file_env MYSQL_ROOT_PASSWORD
docker_process_init_files "$1"/*
