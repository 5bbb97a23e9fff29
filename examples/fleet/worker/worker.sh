#!/bin/sh
# One line per tick: the version, and whether the database port answers.
while true; do
  if echo | nc -w 2 "${DB_HOST:-db}" "${DB_PORT:-5432}" >/dev/null 2>&1; then db=up; else db=down; fi
  echo "worker ${APP_VERSION} tick db=${db}"
  sleep "${TICK_SECONDS:-5}"
done
