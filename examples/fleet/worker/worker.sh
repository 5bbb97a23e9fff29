#!/bin/sh
# One line per tick: the version, and whether the database port answers.
while true; do
  if nc -z -w 2 "${DB_HOST:-db}" "${DB_PORT:-5432}" 2>/dev/null; then db=up; else db=down; fi
  echo "worker ${APP_VERSION} tick db=${db}"
  sleep "${TICK_SECONDS:-5}"
done
