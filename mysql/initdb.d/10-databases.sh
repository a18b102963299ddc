# shellcheck shell=bash
# Sourced (not executed) by the mysql image's entrypoint, once, on an empty data
# directory. Creates the tracker's and the site's databases and users, so that
# mogdbsetup only has to create the schema: its own GRANT ... IDENTIFIED BY fails
# on MySQL 8. The passwords come from files (compose secrets).
#
# The tracker's database gets a binary NO PAD collation: MogileFS keys are byte
# strings, and with a case- or accent-insensitive collation "Avatar.png" and
# "avatar.png" would be one key, and with a PAD SPACE one (utf8mb4_bin) "a.jpg" and
# "a.jpg " would: the second upload silently replacing the first. MySQL 8 calls it
# utf8mb4_0900_bin, MariaDB (10.2 and later) utf8mb4_nopad_bin; the server says which
# it has. mogdbsetup creates the tables without a collation of their own, so they
# inherit this one.

_initdb_secret() {
    local file=$1
    [[ -r $file ]] || {
        echo "initdb: cannot read $file" >&2
        return 1
    }
    local value
    value="$(<"$file")"
    # A quoted SQL string literal: backslashes and single quotes escaped.
    value="${value//\\/\\\\}"
    printf '%s' "${value//\'/\\\'}"
}

_initdb_database() {
    local name=$1 user=$2 password_file=$3 collation=${4:+ COLLATE $4} password
    password="$(_initdb_secret "$password_file")"
    docker_process_sql --database=mysql <<-SQL
		CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4${collation};
		CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY '${password}';
		GRANT ALL PRIVILEGES ON \`${name}\`.* TO '${user}'@'%';
	SQL
    echo "initdb: database ${name} and user ${user} ready"
}

_initdb_nopad_collation() {
    local collation
    collation="$(docker_process_sql --database=mysql --skip-column-names <<-SQL
		SELECT COLLATION_NAME FROM information_schema.COLLATIONS
		WHERE COLLATION_NAME IN ('utf8mb4_0900_bin', 'utf8mb4_nopad_bin')
		ORDER BY COLLATION_NAME LIMIT 1;
	SQL
    )"
    [[ -n $collation ]] || {
        echo "initdb: this server has neither utf8mb4_0900_bin nor utf8mb4_nopad_bin" >&2
        return 1
    }
    printf '%s' "$collation"
}

_initdb_database "${MOGILEFS_DB_NAME:-mogilefs}" "${MOGILEFS_DB_USER:-mogile}" \
    "${MOGILEFS_DB_PASSWORD_FILE:-/run/secrets/mogilefs_db_password}" "$(_initdb_nopad_collation)"
_initdb_database "${SITE_DB_NAME:-avatars}" "${SITE_DB_USER:-avatars}" \
    "${SITE_DB_PASSWORD_FILE:-/run/secrets/site_db_password}" ""
