#!/usr/bin/env bash
### Usage: docker-entrypoint.sh mysqld [server options] | <any command>
# The official mysql image's first-start contract, for Debian's MariaDB: on an empty
# data directory, create it, set the root password, create MYSQL_DATABASE and
# MYSQL_USER, run /docker-entrypoint-initdb.d/* against a server that listens on its
# socket only, stop it; then run the server in the foreground. Sourcing this file
# defines the functions only (the official image's docker_process_sql and
# docker_process_init_files), which is how tests run init scripts against a server.
set -eo pipefail
shopt -s nullglob

DATADIR="${MYSQL_DATADIR:-/var/lib/mysql}"
SOCKET="${MYSQL_SOCKET:-/run/mysqld/mysqld.sock}"

mysql_note() { printf '%s [Note] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*"; }
mysql_error() {
    printf '%s [ERROR] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2
    exit 1
}

# usage: file_env VAR [DEFAULT] -- VAR from $VAR or from the file named by $VAR_FILE.
file_env() {
    local var="$1" fileVar="${1}_FILE" def="${2:-}" val
    if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
        mysql_error "Both $var and $fileVar are set (but are exclusive)"
    fi
    val="$def"
    if [ "${!var:-}" ]; then
        val="${!var}"
    elif [ "${!fileVar:-}" ]; then
        [ -r "${!fileVar}" ] || mysql_error "$fileVar=${!fileVar} is not a readable file"
        val="$(<"${!fileVar}")"
    fi
    export "$var"="$val"
    unset "$fileVar"
}

_mysql_passfile() {
    if [ '--dont-use-mysql-root-password' != "${1:-}" ] && [ -n "${MYSQL_ROOT_PASSWORD:-}" ]; then
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
    if [ -n "${MYSQL_DATABASE:-}" ]; then
        set -- --database="$MYSQL_DATABASE" "$@"
    fi
    "${MYSQL_CLIENT:-mariadb}" --defaults-file=<(_mysql_passfile "${passfileArgs[@]}") \
        --default-character-set=utf8mb4 \
        --protocol=socket -uroot -hlocalhost --socket="$SOCKET" --comments "$@"
}

# usage: docker_process_init_files FILE... -- *.sh sourced (run if executable), *.sql fed.
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

_sql_string() {
    local value="${1//\\/\\\\}"
    printf "'%s'" "${value//\'/\\\'}"
}

_first_start() {
    local pid
    [ -n "${MYSQL_ROOT_PASSWORD:-}" ] || [ -n "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ] ||
        mysql_error "Database is uninitialized and password option is not specified
    You need to specify one of MYSQL_ROOT_PASSWORD, MYSQL_ROOT_PASSWORD_FILE or MYSQL_ALLOW_EMPTY_PASSWORD"
    mysql_note "Initializing database files in $DATADIR"
    mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
        --skip-test-db --skip-name-resolve >/dev/null
    mysql_note "Starting temporary server (socket only)"
    "$@" --skip-networking --socket="$SOCKET" &
    pid=$!
    for _ in $(seq 60); do
        if docker_process_sql --dont-use-mysql-root-password --database=mysql \
            <<<'SELECT 1' >/dev/null 2>&1; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || mysql_error "the temporary server exited"
        sleep 1
    done
    local root_host="${MYSQL_ROOT_HOST:-%}" password
    password="$(_sql_string "${MYSQL_ROOT_PASSWORD:-}")"
    {
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $password;"
        if [ "$root_host" != localhost ]; then
            echo "CREATE USER IF NOT EXISTS 'root'@'$root_host' IDENTIFIED BY $password;"
            echo "GRANT ALL ON *.* TO 'root'@'$root_host' WITH GRANT OPTION;"
        fi
        if [ -n "${MYSQL_DATABASE:-}" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"
        fi
        if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
            echo "CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY $(_sql_string "$MYSQL_PASSWORD");"
            if [ -n "${MYSQL_DATABASE:-}" ]; then
                echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"
            fi
        fi
    } | MYSQL_DATABASE='' docker_process_sql --dont-use-mysql-root-password --database=mysql
    docker_process_init_files /docker-entrypoint-initdb.d/*
    mysql_note "Stopping temporary server"
    kill "$pid"
    wait "$pid" || true
    mysql_note "Database initialized; ready for start up"
}

_main() {
    if [ "${1:0:1}" = '-' ]; then
        set -- mysqld "$@"
    fi
    if [ "$1" = mysqld ]; then
        shift
        set -- mariadbd "$@"
        if [ "$(id -u)" = 0 ]; then
            chown -R mysql:mysql "$DATADIR" /run/mysqld
            exec setpriv --reuid=mysql --regid=mysql --init-groups -- "$0" mysqld "${@:2}"
        fi
        for var in MYSQL_ROOT_PASSWORD MYSQL_DATABASE MYSQL_USER MYSQL_PASSWORD MYSQL_ROOT_HOST; do
            file_env "$var"
        done
        if [ ! -d "$DATADIR/mysql" ]; then
            _first_start "$@"
        fi
    fi
    exec "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _main "$@"
fi
