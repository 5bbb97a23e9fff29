#!/bin/sh
# What the official postgres image does at first start (POSTGRES_USER, _PASSWORD,
# _DB, each also as a _FILE), for a PostgreSQL built from Debian's postgresql-15 package.
set -eu
# The official image's file_env: VAR_FILE names a file holding VAR (Docker/Swarm secrets).
for var in POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB; do
  eval "file=\${${var}_FILE:-}"
  if [ -n "$file" ]; then
    eval "$var=\$(cat \"\$file\")"
  fi
done
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
BIN=/usr/lib/postgresql/15/bin
PGDATA=/var/lib/postgresql/data
AS_PG="setpriv --reuid=postgres --regid=postgres --init-groups"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  chown postgres "$pwfile"
  $AS_PG "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 \
    --no-locale --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    $AS_PG "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null <<SQL
CREATE DATABASE "$POSTGRES_DB";
SQL
  fi
fi
mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql
exec $AS_PG "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*'
