#!/bin/sh
# Creates (first start) or upgrades (later starts, after a new server version) Temporal's
# two databases on temporal-postgresql. Runs in temporalio/admin-tools before the server
# starts (docker-compose.yml: temporal-schema). Idempotent. Adapted from Temporal's own
# compose samples (temporalio/samples-server, compose/scripts/setup-postgres.sh).
set -eu
: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
PORT="${DB_PORT:-5432}"
tool() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" "$@"; }

echo "Waiting for PostgreSQL at $POSTGRES_SEEDS:$PORT ..."
nc -z -w 10 "$POSTGRES_SEEDS" "$PORT"
for db in temporal temporal_visibility; do
  dir=/etc/temporal/schema/postgresql/v12/$([ "$db" = temporal ] && echo temporal || echo visibility)/versioned
  tool --db "$db" create || true            # exists already on later starts
  tool --db "$db" setup-schema -v 0.0 || true # only the first time: the version table
  tool --db "$db" update-schema -d "$dir"   # applies what is missing, up to this release
done
echo "Temporal schema ready."
