#!/usr/bin/env bash
# Create .env for docker compose from .env.example when it does not exist yet, with a fresh
# random CLICKHOUSE_PASSWORD. Never touches an existing .env. Usage: docker/ensure-env.sh [DIR]
set -euo pipefail

dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
env_file="$dir/.env"
example="$dir/.env.example"

if [[ -e "$env_file" ]]; then
    exit 0
fi
if [[ ! -f "$example" ]]; then
    echo "ensure-env: $example is missing" >&2
    exit 1
fi

# 16 random bytes as 32 hex digits: nothing the entrypoint's XML or a shell would mangle.
password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
if [[ ${#password} -ne 32 ]]; then
    echo "ensure-env: could not read random bytes" >&2
    exit 1
fi

tmp=$(mktemp "$dir/.env.XXXXXX")
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" == CLICKHOUSE_PASSWORD=* ]]; then
        line="CLICKHOUSE_PASSWORD=$password"
    fi
    printf '%s\n' "$line"
done < "$example" > "$tmp"
chmod 600 "$tmp"
mv "$tmp" "$env_file"
trap - EXIT
echo "ensure-env: created $env_file with a random CLICKHOUSE_PASSWORD (user and password for DBeaver are there)"
