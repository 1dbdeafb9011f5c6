#!/usr/bin/env bash
# Apply the astro schema to the ClickHouse server: every sql/*.sql, then every
# sql/schedule/*.sql (the refreshable materialized view, which needs the tables), each in
# file-name (byte) order, each file as one clickhouse-client --multiquery run. The statements
# are idempotent (IF NOT EXISTS), so this runs on every `make up`.
#
# Runs in the clickhouse-server image (the "init" service of docker-compose.yml). Not applied:
# sql/ingest/ (an ingest is a user action: make ingest, DBeaver, the refreshable view) and any
# other subdirectory (e.g. statements only the embedded engine accepts).
set -euo pipefail
shopt -s nullglob
export LC_ALL=C  # glob order = byte order of file names

sql_dir=${ASTRO_SQL_DIR:-/astro/sql}
host=${CLICKHOUSE_HOST:-clickhouse}
port=${CLICKHOUSE_PORT:-9000}
: "${CLICKHOUSE_USER:?CLICKHOUSE_USER is not set}"
: "${CLICKHOUSE_PASSWORD:?CLICKHOUSE_PASSWORD is not set}"

client=(clickhouse-client --host "$host" --port "$port"
        --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD"
        --multiquery)

files=("$sql_dir"/*.sql "$sql_dir"/schedule/*.sql)
if ((${#files[@]} == 0)); then
    echo "init: no SQL files in $sql_dir or $sql_dir/schedule" >&2
    exit 1
fi

for file in "${files[@]}"; do
    echo "init: applying ${file#"$sql_dir"/}"
    if ! "${client[@]}" < "$file"; then
        echo "init: failed in ${file#"$sql_dir"/}; nothing after it was applied" >&2
        exit 1
    fi
done

echo "init: done. Objects in database astro, executable functions and dictionaries:"
"${client[@]}" --query "
    SELECT 'table' AS kind, name, engine AS detail FROM system.tables WHERE database = 'astro'
    UNION ALL
    SELECT 'function', name, toString(origin) FROM system.functions
    WHERE toString(origin) = 'ExecutableUserDefined'
    UNION ALL
    SELECT 'dictionary', name, toString(status) FROM system.dictionaries
    ORDER BY kind, name
    FORMAT PrettyCompactMonoBlock" || echo "init: (could not list the objects; the schema was applied)"
